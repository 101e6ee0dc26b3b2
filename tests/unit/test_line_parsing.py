"""Bronze's line parser reads JSON as Python's json does, though msgspec reads each line first, and a
parsed record becomes the row of the fixed schema whatever keys it has (no Spark here)."""

from __future__ import annotations

import json
import random

from lakehouse.ingest.bronze import _BITS, _fixed_row, parse_json_line

# lines where msgspec and Python's json disagree or may: the result must be json's
EDGE_LINES = [
    '{"a": NaN, "b": Infinity, "c": -Infinity}',      # json takes these, msgspec does not
    '{"a": 1e400}',                                   # json: inf; msgspec refuses it
    '{"a": "\\ud800"}',                               # a lone surrogate escape
    '{"a": 123456789012345678901234567890}',          # beyond 64 bits
    '{"a": "x\ty"}',                                  # a raw control character: both refuse it
    '\ufeff{"a": 1}',                                 # a byte-order mark
    '{"a": 1, "a": 2}',                               # a repeated key: the last wins
    '{"a": 1} x', '{"a": 01}', '{"a": 1,}', '{"a": 1', '',
    '[1, 2]', '"text"', '3', 'null',                  # valid JSON, not an object
    '{"a": 12.50, "b": 1E2, "c": -0, "d": 0.1e1, "e": true, "f": null, "g": "é\\u00e9"}',
    '{"nested": {"b": [1, 2.50, null, true, {"c": "d"}]}, "list": []}',
    ' {"padded": 1} ',
]


def json_reading(line: str):
    """What parsing with Python's json alone gives (the parser before msgspec read lines first)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"JSON syntax: {exc.msg} at char {exc.pos}"
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    return {k: v if v is None or isinstance(v, str) else json.dumps(v) for k, v in obj.items()}, None


def test_a_json_line_parses_as_pythons_json_reads_it_including_what_msgspec_refuses():
    for line in EDGE_LINES:
        assert parse_json_line(line) == json_reading(line), line
    rec, err = parse_json_line('{"a": NaN, "b": 1e400}')
    assert err is None and rec == {"a": "NaN", "b": "Infinity"}
    assert parse_json_line('{"a": 1')[1].startswith("JSON syntax: Expecting")
    assert parse_json_line("[1, 2]") == (None, "expected a JSON object, got list")


def test_random_numbers_strings_and_nesting_parse_as_pythons_json_reads_them():
    rng = random.Random(7)

    def value(depth: int = 0):
        kind = rng.randrange(7 if depth < 2 else 5)
        if kind == 0:
            return rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30)
        if kind == 1:
            return rng.randint(-2**70, 2**70)
        if kind == 2:
            return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(160, 0x2FFF), rng.randint(0x1F600, 0x1F64F)]))
                           for _ in range(5))  # ASCII, others of the first plane, astral (escaped as surrogate pairs)
        if kind == 3:
            return rng.choice([True, False, None])
        if kind == 4:
            return f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}e{rng.randint(-5, 5)}"  # a string, kept as is
        if kind == 5:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randint(0, 3))}

    for _ in range(3000):
        obj = {f"f{i}": value() for i in range(rng.randint(1, 6))}
        line = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
        # numbers as a source might write them: 12.50, 1E+3
        line = line.replace(".5,", ".50,").replace("e+", "E+") if rng.random() < 0.3 else line
        assert parse_json_line(line) == json_reading(line), line


def test_a_record_becomes_the_same_fixed_row_whatever_keys_it_has_and_however_often_its_key_set_recurs():
    expected = [f"c{i}" for i in range(70)]  # two presence words

    def reference(rec: dict):
        """The row by definition: each expected column's value, the unexpected keys, a bit per key had."""
        masks = [0, 0]
        for k in rec:
            if k in expected:
                i = expected.index(k)
                masks[i // _BITS] |= 1 << (i % _BITS)
        extra = {k: v for k, v in rec.items() if k not in expected} or None
        return (*[rec.get(c) for c in expected], "f", 1, None, None, "2026-01-01", extra, *masks)

    row = _fixed_row(expected, 2)
    full = {c: f"v{c}" for c in expected}
    records = [full, {**full, "zz": "1"}, {"c0": None, "c64": "x"}, {"c69": "y", "new": None, "c1": "z"},
               {k: full[k] for k in reversed(expected)}, {"only_new": "1"}, full, {"c0": None, "c64": "x"}]
    for rec in records * 2:  # the second time from the remembered key sets
        assert row(("f", 1, rec, None, None, "2026-01-01")) == reference(rec)
    assert row(("f", 2, None, "JSON syntax: x", "{", "2026-01-01")) == (
        *[None] * 70, "f", 2, "JSON syntax: x", "{", "2026-01-01", None, 0, 0)
    one = _fixed_row(["a"], 1)
    assert one(("f", 1, {"a": "1"}, None, None)) == ("1", "f", 1, None, None, None, 1)
    assert one(("f", 1, {"b": "1"}, None, None)) == (None, "f", 1, None, None, {"b": "1"}, 0)
    assert _fixed_row([], 1)(("f", 1, {"b": "1"}, None, None)) == ("f", 1, None, None, {"b": "1"}, 0)
