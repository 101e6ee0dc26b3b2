"""Raw bytes -> bronze rows. Parsing runs on the executors, line by line, so nothing is lost:

- a line that parses becomes a row with every expected column (as text; silver types them);
- a line that does not (wrong field count, broken quoting, truncated JSON) becomes a row with
  ``_parse_error`` saying why and ``_raw_record`` holding the line as it came;
- a column the source starts sending is kept (the Delta schema evolves; logged), and a column it
  stops sending is null (logged).

Each row carries ``_source_file`` and ``_line`` (1-based, header included for CSV), so any bad
record can be traced to the exact file and line.
"""

from __future__ import annotations

import csv
import json
import re
from operator import itemgetter
from typing import Any, Iterator

import msgspec
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

META_COLUMNS = ["_source_file", "_line", "_parse_error", "_raw_record"]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def parse_csv_line(line: str, header: list[str], delimiter: str = ",") -> tuple[dict[str, str] | None, str | None]:
    try:
        fields = next(csv.reader([line], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration) as exc:
        return None, f"CSV syntax: {exc}"
    if len(fields) != len(header):
        return None, f"expected {len(header)} fields, found {len(fields)}"
    return {h: (None if v == "" else v) for h, v in zip(header, fields)}, None


_DECODE = msgspec.json.Decoder().decode
_NOT_DECODED = (msgspec.DecodeError, msgspec.ValidationError)


def parse_json_line(line: str) -> tuple[dict[str, str] | None, str | None]:
    """A JSON line as Python's ``json`` reads it. msgspec's decoder reads a line first (several times
    faster); whatever it refuses goes to ``json.loads``, which then decides: Python's json takes some
    lines msgspec does not (``NaN``, lone surrogates, ``1e400``) and words the syntax errors."""
    try:
        obj = _DECODE(line)
    except _NOT_DECODED:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            return None, f"JSON syntax: {exc.msg} at char {exc.pos}"
    if obj.__class__ is not dict:
        return None, f"expected a JSON object, got {type(obj).__name__}"
    # _text inlined: this runs once per line of the largest sources
    return {k: (v if v is None or v.__class__ is str else json.dumps(v)) for k, v in obj.items()}, None


def parse_whitespace_line(line: str, header: list[str]) -> tuple[dict[str, str] | None, str | None]:
    fields = line.split()
    if len(fields) != len(header):
        return None, f"expected {len(header)} fields, found {len(fields)}"
    return dict(zip(header, fields)), None


def parse_line(line: str, fmt: str, header: list[str] | None, delimiter: str = ",") -> tuple[dict | None, str | None]:
    """One line of a file as (record, None) or (None, why it does not parse)."""
    if "\ufffd" in line:
        return None, "not valid UTF-8 (wrong encoding? declare the file's encoding)"
    if fmt == "csv":
        return parse_csv_line(line, header or [], delimiter)
    if fmt == "whitespace":
        return parse_whitespace_line(line, header or [])
    return parse_json_line(line)


def _parsed_lines(spark: SparkSession, file_uri: str, name: str, fmt: str, header: list[str] | None,
                  delimiter: str = ",", has_header: bool = True):
    """RDD of (source_file, line_no, record|None, error|None, raw|None).

    ``fmt``: csv (quoted, ``delimiter``-separated), whitespace (runs of blanks separate fields) or
    json (one object per line). A line with bytes that were not valid UTF-8 (decoded as U+FFFD) is
    an error naming the encoding, not a silently garbled record.
    """
    lines = spark.sparkContext.textFile(file_uri).zipWithIndex()
    skip_first = fmt in ("csv", "whitespace") and has_header

    def parse(part: Iterator[tuple[str, int]]):
        for line, idx in part:
            number = idx + 1
            if skip_first and idx == 0:
                continue  # header
            if not line.strip():
                continue
            rec, err = parse_line(line, fmt, header, delimiter)
            yield name, number, rec, err, (line if err else None)

    return lines.mapPartitions(parse)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # where Hadoop's line reader (textFile) breaks lines


def _parsed_files(spark: SparkSession, files: dict[tuple[str, str], tuple[str, list[str] | None, str]],
                  uris: list[str], fmt: str, delimiter: str = ",", has_header: bool = True):
    """``_parsed_lines`` of many small files in one read (the history load): (source_file, line_no,
    record|None, error|None, raw|None, date) per line. ``files`` maps (partition folder, file name)
    to (file name, CSV header, date). Each file is read whole and split where ``textFile`` splits, so
    the rows and line numbers are the ones a daily run's ``_parsed_lines`` gives; no job per file
    to number the lines."""
    skip_first = fmt in ("csv", "whitespace") and has_header
    pages = spark.sparkContext.wholeTextFiles(",".join(uris), minPartitions=spark.sparkContext.defaultParallelism)

    def parse(part):
        for path, content in part:
            folder, base = path.rstrip("/").rsplit("/", 2)[-2:]
            name, header, day = files[(folder, base)]
            lines = _LINE_BREAK.split(content)
            if lines and lines[-1] == "":
                lines.pop()  # the break that ends the last line opens no line of its own
            for idx, line in enumerate(lines):
                if skip_first and idx == 0:
                    continue
                if not line.strip():
                    continue
                rec, err = parse_line(line, fmt, header, delimiter)
                yield name, idx + 1, rec, err, (line if err else None), day

    return pages.mapPartitions(parse)


def _api_records(spark: SparkSession, folder_uri: "str | list[str]", days: dict[str, str] | None = None):
    """Records of API page files (one JSON document per page) as parsed lines; of several folders in
    one read with ``days`` (folder name -> date: each line then ends with its folder's date)."""
    folders = [folder_uri] if isinstance(folder_uri, str) else folder_uri
    pages = spark.sparkContext.wholeTextFiles(",".join(f + "/*.json" for f in folders),
                                              minPartitions=spark.sparkContext.defaultParallelism)

    def parse(part):
        for path, content in part:
            folder, name = path.rsplit("/", 2)[-2:]
            tag = (days[folder],) if days is not None else ()
            for row in _page_records(name, content):
                yield (*row, *tag)

    return pages.mapPartitions(parse)


def _page_records(name: str, content: str):
    """The records of one API page as parsed lines."""
    try:
        data = json.loads(content)["data"]
    except (ValueError, KeyError, TypeError) as exc:
        yield name, 0, None, f"page is not an API listing: {exc}", content[:10000]
        return
    for i, obj in enumerate(data, start=1):
        if isinstance(obj, dict):
            yield name, i, {k: _text(v) for k, v in obj.items()}, None, None
        else:
            yield name, i, None, f"expected a JSON object, got {type(obj).__name__}", json.dumps(obj)


def parse_raw(spark: SparkSession, partition_uri: str, files: list[str], fmt: str,
              expected: list[str], headers: dict[str, list[str]], delimiter: str = ",", has_header: bool = True):
    """Parse one raw partition.

    Returns (frame, new columns seen, expected columns missing, rows, unparseable rows, the cached
    parsed rows the frame projects); the counts come from the same pass that finds the columns, so
    parsing is paid once. The caller unpersists the cached rows after writing the frame.
    """
    return parse_partitions(spark, [(partition_uri, files, headers, None)], fmt, expected, delimiter, has_header)


def parse_partitions(spark: SparkSession, partitions: list[tuple[str, list[str], dict[str, list[str]], str | None]],
                     fmt: str, expected: list[str], delimiter: str = ",", has_header: bool = True):
    """``parse_raw`` over many raw partitions at once (the history load): ``partitions`` holds (URI,
    file names, CSV headers by file, date); with dates, each row carries its partition's date as
    ``_ingest_date`` (a string). One pass finds the columns and counts for all of them."""
    rdds = []
    dated = partitions[0][3] is not None
    if dated and fmt != "api":  # many small files: one read of them all
        by_file = {(uri.rstrip("/").rsplit("/", 1)[-1], name): (name, headers.get(name), day)
                   for uri, names, headers, day in partitions for name in names}
        uris = [f"{uri}/{name}" for uri, names, _, _ in partitions for name in names]
        partitions_to_read = []
        rdds.append(_parsed_files(spark, by_file, uris, fmt, delimiter, has_header))
    elif dated:  # API pages of many dates: one read of them all
        partitions_to_read = []
        rdds.append(_api_records(spark, [p[0] for p in partitions], {p[0].rstrip("/").rsplit("/", 1)[-1]: p[3]
                                                                      for p in partitions}))
    else:
        partitions_to_read = partitions
    for partition_uri, files, headers, day in partitions_to_read:
        if fmt == "api":
            parts = [_api_records(spark, partition_uri)]
        else:
            parts = [_parsed_lines(spark, f"{partition_uri}/{name}", name, fmt, headers.get(name), delimiter,
                                   has_header) for name in files]
        if day is not None:
            parts = [r.map(lambda t, d=day: (*t, d)) for r in parts]
        rdds += parts
    rdd = rdds[0] if len(rdds) == 1 else spark.sparkContext.union(rdds)
    # The parsed lines go to the JVM once, as rows of a fixed schema: the expected columns, keys no
    # one expected in a map, and which expected keys each record had as bits. Cached there (columnar,
    # spilling to disk), one aggregation finds the counts and the columns; Python's work on a line ends
    # with its parse (no cache of pickled records to read twice, no second conversion).
    words = max(1, -(-len(expected) // _BITS))
    parsed = spark.createDataFrame(rdd.map(_fixed_row(expected, words)), _fixed_schema(expected, dated, words),
                                   verifySchema=False).cache()
    stats = parsed.agg(F.count(F.lit(1)), F.count("_parse_error"),
                       F.array_distinct(F.flatten(F.collect_set(F.map_keys(_EXTRA)))),
                       *[F.bit_or(f"{_PRESENT}{j}") for j in range(words)]).first()
    n_rows, n_bad, unexpected, masks = stats[0], stats[1], stats[2], list(stats[3:])
    seen = {c for i, c in enumerate(expected) if (masks[i // _BITS] or 0) >> (i % _BITS) & 1}
    seen.update(unexpected or [])
    for _, _, headers, _ in partitions:
        for h in headers.values():
            seen.update(h)
    extra = sorted(seen - set(expected))
    missing = [c for c in expected if seen and c not in seen]
    df = parsed.select(*[F.col(_quoted(c)) for c in expected], *[F.col(_EXTRA).getItem(c).alias(c) for c in extra],
                       *[F.col(c) for c in META_COLUMNS], *([F.col("_ingest_date")] if dated else []))
    return df, extra, missing, n_rows, n_bad, parsed


_BITS = 63  # expected keys per presence word (a signed 64-bit column)
_EXTRA, _PRESENT = "__unexpected_keys", "__expected_keys_present_"


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _fixed_schema(expected: list[str], dated: bool, words: int) -> T.StructType:
    return T.StructType(
        [T.StructField(c, T.StringType()) for c in expected]
        + [T.StructField("_source_file", T.StringType()), T.StructField("_line", T.LongType()),
           T.StructField("_parse_error", T.StringType()), T.StructField("_raw_record", T.StringType())]
        + ([T.StructField("_ingest_date", T.StringType())] if dated else [])
        + [T.StructField(_EXTRA, T.MapType(T.StringType(), T.StringType()))]
        + [T.StructField(f"{_PRESENT}{j}", T.LongType()) for j in range(words)])


def _fixed_row(expected: list[str], words: int):
    """A parsed line -> a row of ``_fixed_schema``: the expected columns' values, the meta columns, the
    keys not expected (a dict, or None) and, per word, a bit for each expected key the record had (a
    key with a null value counts: a column the source sends empty is not missing).

    The lines of a source mostly share a few key sets: what a key set means (its bits, its unexpected
    keys, whether it holds every expected key) is worked out once per set and remembered."""
    index = {c: i for i, c in enumerate(expected)}
    none = [None] * len(expected)
    empty = [0] * words
    every = itemgetter(*expected) if len(expected) > 1 else (lambda rec: tuple(rec[c] for c in expected))
    shapes: dict[tuple, tuple[list[int], list[str], bool]] = {}

    def shape(keys: tuple) -> tuple[list[int], list[str], bool]:
        masks = [0] * words
        unexpected = []
        for k in keys:
            i = index.get(k)
            if i is None:
                unexpected.append(k)
            else:
                masks[i // _BITS] |= 1 << (i % _BITS)
        return masks, unexpected, len(keys) - len(unexpected) == len(expected)

    def row(r):
        name, number, rec, err, raw, *day = r
        if not rec:
            return (*none, name, number, err, raw, *day, None, *empty)
        keys = tuple(rec)
        known = shapes.get(keys)
        if known is None:
            known = shape(keys)
            if len(shapes) < 4096:  # a source with ever new keys is not remembered beyond this
                shapes[keys] = known
        masks, unexpected, complete = known
        values = every(rec) if complete else [rec.get(c) for c in expected]
        extra = {k: rec[k] for k in unexpected} if unexpected else None
        return (*values, name, number, err, raw, *day, extra, *masks)

    return row
