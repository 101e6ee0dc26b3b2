"""Draft a dataset profile from a file (``lakehouse byod init``): a starting point to review, not a
final answer. Reads a sample with pandas (no Spark) and guesses:

- the format (delimiter by ``csv.Sniffer``, or whitespace-separated), whether there is a header,
  and the encoding (UTF-8, else Latin-1);
- roles by name and content: the customer id, the label (snapshots) or the timestamp (event logs),
  numeric columns (at least 95 % of non-blank values read as numbers), categorical ones (few distinct
  values), personal data (names like e-mail, phone, surname), and the rest dropped (free text,
  identifiers, dates);
- the label's churned values (yes/true/1/churned/exited...), timestamp patterns that parse the sample,
  and for event logs an amount (a money column, or quantity x price).

Every guess is written into the YAML as a comment so the user sees what to check.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import yaml

from lakehouse.byod.profile import Profile, ProfileError, check_header, normalize

ID_NAME = re.compile(r"^(customer|cust|client|account|user|member|subscriber)(_?(id|no|number|ref|key))?$|^id$|_id$")
LABEL_NAME = re.compile(r"^(churn|churned|is_churn|exited|attrition(_flag)?|left|label|target|churn_label)\W*$")
TIME_NAME = re.compile(r"date|time|timestamp|created|ordered")
PII_NAME = re.compile(r"e_?mail|phone|surname|first_name|last_name|^name$|address|ssn|iban")
AMOUNT_NAME = re.compile(r"amount|revenue|sales|total|value|spend|dollars|price")
QTY_NAME = re.compile(r"quantity|qty|items|units|count")
CHURN_WORDS = {"yes", "y", "true", "t", "1", "1.0", "churn", "churned", "exited", "left", "attrited customer"}
TIME_FORMATS = [("%Y-%m-%d %H:%M:%S", "yyyy-MM-dd HH:mm:ss"), ("%Y-%m-%dT%H:%M:%S", "yyyy-MM-dd'T'HH:mm:ss"),
                ("%Y-%m-%d %H:%M", "yyyy-MM-dd HH:mm"), ("%Y-%m-%d", "yyyy-MM-dd"), ("%Y%m%d", "yyyyMMdd"),
                ("%m/%d/%Y %H:%M", "M/d/yyyy H:mm"), ("%d/%m/%Y %H:%M", "d/M/yyyy H:mm"),
                ("%m/%d/%Y", "M/d/yyyy"), ("%d/%m/%Y", "d/M/yyyy"), ("%d.%m.%Y", "d.M.yyyy")]


def _number(text: str, decimal_comma: bool = False) -> bool:
    t = text.strip()
    if decimal_comma:
        t = t.replace(",", ".")
    try:
        float(t)
        return True
    except ValueError:
        return False


def _sniff(path: Path) -> tuple[str, dict]:
    raw = path.open("rb").read(65536)
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(raw) - 4:  # a character cut by the sample's end
            text, encoding = raw[:exc.start].decode("utf-8"), "utf-8"
        else:
            text, encoding = raw.decode("latin-1"), "latin-1"
    lines = [ln for ln in text.lstrip("\ufeff").splitlines()[:200] if ln.strip()]
    if not lines:
        raise ProfileError(f"{path}: no data in the first 64 KiB")
    source: dict = {"encoding": encoding}
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t|")
        counts = {len(next(csv.reader([ln], delimiter=dialect.delimiter))) for ln in lines[:50]}
        if max(counts) < 2 or len(counts) > 2:
            raise csv.Error("inconsistent")
        source |= {"format": "csv", "delimiter": dialect.delimiter}
        rows = [next(csv.reader([ln], delimiter=dialect.delimiter)) for ln in lines[:50]]
    except csv.Error:
        source["format"] = "whitespace"
        rows = [ln.split() for ln in lines[:50]]
    first, rest = rows[0], rows[1:]
    numeric_first = sum(_number(v) for v in first if v.strip())
    numeric_rest = max((sum(_number(v) for v in r if v.strip()) for r in rest), default=0)
    source["header"] = numeric_first == 0 and (numeric_rest > 0 or len(set(first)) == len(first))
    if not source["header"]:
        source["column_names"] = [f"col{i + 1}" for i in range(len(first))]
    return text, source


def _read_sample(path: Path, source: dict, rows: int):
    import pandas as pd

    sep = r"\s+" if source["format"] == "whitespace" else source["delimiter"]
    df = pd.read_csv(path, sep=sep, header=0 if source["header"] else None, dtype=str, nrows=rows,
                     encoding=source["encoding"], keep_default_na=False, engine="python")
    names = [normalize(str(c)) for c in df.columns] if source["header"] else source["column_names"]
    df.columns = names
    return df


def _time_formats(values: list[str]) -> list[str]:
    sample = [v.strip() for v in values if v.strip()][:500]
    found = []
    for py, spark in TIME_FORMATS:
        ok = 0
        for v in sample:
            try:
                dt.datetime.strptime(v, py)
                ok += 1
            except ValueError:
                pass
        if sample and ok / len(sample) >= 0.5:
            found.append(spark)
    return found


def draft_profile(path: Path, shape: str, customer_id: str | None = None, label: str | None = None,
                  timestamp: str | None = None, name: str | None = None, sample_rows: int = 20000) -> str:
    """YAML text of a drafted profile for ``path``; raises ProfileError if a role cannot be guessed."""
    path = Path(path)
    _, source = _sniff(path)
    df = _read_sample(path, source, sample_rows)
    cols = list(df.columns)
    comments: list[str] = [f"drafted from {path.name}: {len(df)} sample rows, {len(cols)} columns "
                           f"({source['format']}, header {'yes' if source['header'] else 'no'}, {source['encoding']})"]

    def pick(given: str | None, pattern: re.Pattern, role: str) -> str:
        if given:
            n = normalize(given)
            if n not in cols:
                raise ProfileError(f"{path}: no column {given!r} for the {role}; columns: {', '.join(cols)}")
            return n
        hits = [c for c in cols if pattern.search(c)]
        if not hits:
            raise ProfileError(f"{path}: cannot tell which column is the {role}; pass it "
                               f"(--{role.replace(' ', '-')}); columns: {', '.join(cols)}")
        comments.append(f"{role}: guessed {hits[0]!r} from its name" + (f" (also matched {hits[1:]})" if hits[1:] else ""))
        return hits[0]

    if customer_id or shape == "event_log" or any(ID_NAME.search(c) for c in cols):
        cid = pick(customer_id, ID_NAME, "id")
    else:  # a snapshot without an id column: each row gets a row id derived from its values
        cid = None
        comments.append("id: no column looks like a customer id; customer_id is left empty, so each row gets a "
                        "row id derived from its values (identical lines share it); pass --id if there is one")
    used = {cid}
    profile: dict = {"name": name or normalize(path.stem)[:40].lstrip("_0123456789") or "dataset",
                     "description": f"drafted by lakehouse byod init from {path.name}; review every guess",
                     "shape": shape, "source": source, "customer_id": cid}
    if shape == "snapshot":
        lab = pick(label, LABEL_NAME, "label")
        used.add(lab)
        values = sorted({v.strip().lower() for v in df[lab] if v.strip()})
        churned = [v for v in values if v in CHURN_WORDS]
        retained = [v for v in values if v not in churned]
        if len(values) > 10 or not churned or not retained:
            comments.append(f"label {lab!r}: could not split its values {values[:10]} into churned/retained: edit them")
            churned, retained = churned or values[:1], retained or values[1:]
        profile["label"] = {"column": lab, "churned": churned, "retained": retained}
    else:
        ts = pick(timestamp, TIME_NAME, "timestamp")
        used.add(ts)
        formats = _time_formats(list(df[ts]))
        if not formats:
            raise ProfileError(f"{path}: no known date pattern reads column {ts!r} (e.g. {df[ts].iloc[0]!r}); "
                               "write events.timestamp.formats yourself (Spark datetime patterns)")
        profile["events"] = {"timestamp": {"column": ts, "formats": formats}}
    numeric, categorical, pii, drop = [], [], [], []
    n = max(1, len(df))
    for c in cols:
        if c in used:
            continue
        values = [v for v in df[c] if v.strip()]
        distinct = len(set(values))
        share = sum(_number(v) for v in values) / len(values) if values else 0.0
        named = PII_NAME.search(c)
        if named and (any("@" in v for v in values[:200]) or distinct > 0.5 * len(values)):
            pii.append(c)
            comments.append(f"{c!r}: personal data, hashed in silver (its name matches {named.group(0)!r} and "
                            f"{distinct} of {len(values)} sample values differ)")
            continue
        if named:
            comments.append(f"{c!r}: its name looks personal ({named.group(0)!r}) but it has {distinct} distinct values "
                            f"in {len(values)} rows: not marked as personal data")
        if share >= 0.95 and not (ID_NAME.search(c) or c.endswith("number") and distinct > 0.9 * n):
            numeric.append(c)
        elif values and _time_formats(values[:200]):
            drop.append(c)
            comments.append(f"{c!r}: dates; dropped (derive a feature from it yourself if it matters)")
        elif 0 < distinct <= max(30, min(100, n // 20)):
            categorical.append(c)
        else:
            drop.append(c)
            comments.append(f"{c!r}: {distinct} distinct text values in {len(values)} rows; dropped (identifier or free text?)")
    if shape == "snapshot":
        profile |= {"numeric": numeric, "categorical": categorical}
    else:
        money = [c for c in numeric if AMOUNT_NAME.search(c)]
        qty = [c for c in numeric if QTY_NAME.search(c)]
        price = [c for c in money if "price" in c]
        if qty and price:
            profile["events"]["amount"] = f"{qty[0]} * {price[0]}"
        elif money:
            profile["events"]["amount"] = money[0]
            numeric.remove(money[0])  # the amount has its own role (a column is declared once)
            comments.append(f"events.amount: {money[0]!r}, guessed from its name")
        else:
            comments.append("no amount column recognized: set events.amount to a column or an expression")
        profile["events"] |= {"numeric": numeric, "categorical": categorical, "horizon_days": 90,
                              "cutoffs": {"count": 4, "every_days": 30}}
        profile["evaluation"] = {"method": "out_of_time", "test_fraction": 0.25}
    if pii:
        profile["pii"] = pii
    if drop:
        profile["drop"] = drop
    Profile.model_validate(profile)  # the draft must at least be a valid profile
    check_header(Profile.model_validate(profile), cols, str(path))
    head = "".join(f"# {c}\n" for c in comments)
    return head + yaml.safe_dump(profile, sort_keys=False, allow_unicode=True, width=110)
