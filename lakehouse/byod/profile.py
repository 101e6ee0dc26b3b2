"""Dataset profiles: how a user's own churn file is read, checked, turned into features and labelled.

A profile is one YAML file (see ``conf/base/byod/`` and ``docs/byod.md``). Two shapes:

- ``snapshot``: a row per customer with a label column (a CRM or billing extract);
- ``event_log``: a row per event (purchase, payment, login) with a customer, a timestamp and
  optionally an amount; the label is derived: no activity within ``horizon_days`` after a cutoff.

Column names in a profile may be written as they appear in the file's header or in their
normalized form (lower case, runs of spaces and punctuation as ``_``): ``"Total Charges"``,
``"total  charges"`` and ``total_charges`` are the same column. Checking a profile against a file's
header (``check_header``) needs no Spark, so a typo fails in milliseconds with the column named.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakehouse.errors import ConfigError
from lakehouse.quality.rules import Rule


class ProfileError(ConfigError):
    """The profile does not fit itself or the file (a missing column, an undeclared label value...)."""


def normalize(name: str) -> str:
    """Header text -> column name: ``" Total  Charges "`` -> ``total_charges``."""
    out = re.sub(r"[^0-9a-z]+", "_", name.replace("\ufeff", "").strip().lower()).strip("_")
    return out or "column"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Strict):
    # csv: quoted fields, one delimiter; whitespace: fields separated by runs of spaces/tabs
    format: Literal["csv", "whitespace"] = "csv"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True
    column_names: list[str] | None = None  # required when header is false
    encoding: str = "utf-8"
    decimal_comma: bool = False  # numbers written 12,5 (the delimiter then is usually ';')

    @model_validator(mode="after")
    def _names(self) -> "SourceSpec":
        if not self.header and not self.column_names:
            raise ValueError("source.header is false: list the columns in source.column_names")
        if self.decimal_comma and self.format == "csv" and self.delimiter == ",":
            raise ValueError("source.decimal_comma needs a delimiter other than ','")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ValueError(f"source.encoding {self.encoding!r} is not a known text encoding") from None
        return self


# YAML 1.1 reads unquoted yes/no/true/false/on/off as booleans and 1/0 as numbers; a label value
# means its text, so a boolean stands for every spelling YAML would have turned into it.
_BOOL_TEXT = {True: ["yes", "true", "on"], False: ["no", "false", "off"]}


def _as_texts(value):
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for v in items:
        if isinstance(v, bool):
            out += _BOOL_TEXT[v]
        elif isinstance(v, (int, float)):
            out.append(str(v))
        else:
            out.append(v)
    return out


class LabelSpec(_Strict):
    column: str
    churned: list[str] = Field(min_length=1)   # values meaning "churned" (compared trimmed, case-insensitive)
    retained: list[str] = Field(min_length=1)

    _texts = field_validator("churned", "retained", mode="before")(lambda cls, v: _as_texts(v))

    @model_validator(mode="after")
    def _disjoint(self) -> "LabelSpec":
        both = {v.strip().lower() for v in self.churned} & {v.strip().lower() for v in self.retained}
        if both:
            raise ValueError(f"label values {sorted(both)} are listed as both churned and retained")
        return self


# the id of a row of a file without an id column: "r" + 16 hex digits of a SHA-256 of the row's values,
# so identical lines share it (found as exact duplicates) and any other line gets its own
ROW_ID = "row_id"
# the line number of an event, as text, when an event log keeps identical lines
LINE_ID = "line_no"


class TimestampSpec(_Strict):
    column: str
    formats: list[str] = Field(default_factory=lambda: ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd"], min_length=1)


class CutoffSpec(_Strict):
    """Snapshot dates of an event log: explicit, or ``count`` dates ``every_days`` apart ending at
    the last date whose horizon the file fully covers."""

    dates: list[dt.date] | None = None
    count: int = Field(default=4, ge=2)
    every_days: int = Field(default=30, ge=1)


class EventLogSpec(_Strict):
    timestamp: TimestampSpec
    amount: str | None = None          # a column, or a SQL expression over columns ("quantity * price")
    order_id: str | None = None        # count distinct orders instead of rows (order lines files)
    # identical lines are genuine repeats (order lines without an order id): keep them, told apart by
    # their line number (LINE_ID), instead of removing them as exact duplicates
    keep_identical_lines: bool = False
    horizon_days: int = Field(default=90, ge=1)
    active_within_days: int = Field(default=365, ge=1)  # who is a customer at a cutoff
    cutoffs: CutoffSpec = Field(default_factory=CutoffSpec)
    numeric: list[str] = Field(default_factory=list)    # other numeric columns (typed and checked)
    categorical: list[str] = Field(default_factory=list)


class EvaluationSpec(_Strict):
    method: Literal["stratified", "out_of_time"] = "stratified"
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    seed: int = 7


class TrainingSpec(_Strict):
    algorithms: list[Literal["logistic_regression", "random_forest", "gbt"]] = Field(
        default_factory=lambda: ["logistic_regression", "random_forest", "gbt"], min_length=1)
    cv_folds: int = Field(default=3, ge=2)
    # "none": every row weighs the same, so scores are probabilities (the default); "balanced": churners
    # weigh (non-churners / churners), which inflates the scores (the report shows the Brier score)
    class_weight: Literal["none", "balanced"] = "none"
    # large candidates (forests of baseline size, 100 boosting rounds) join cross-validation only while
    # the training rows are at most this many; the plain baselines are trained whatever the size
    large_candidates_max_rows: int = Field(default=200_000, ge=0)
    # tuning stops starting new algorithms once this many minutes have gone (the baselines still run)
    time_budget_minutes: float | None = Field(default=None, gt=0)


class BusinessSpec(_Strict):
    """What a contact is worth, for the decision threshold: either the values (a saved customer, a contact,
    how often a contacted churner stays) or a contact rate to target. Unset: conf's model.costs."""

    saved_customer_value: float | None = Field(default=None, ge=0)
    contact_cost: float | None = Field(default=None, ge=0)
    offer_success_rate: float = Field(default=0.3, ge=0, le=1)
    target_contact_rate: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _complete(self) -> "BusinessSpec":
        values = (self.saved_customer_value is None, self.contact_cost is None)
        if values[0] != values[1]:
            raise ValueError("business: give both saved_customer_value and contact_cost (or neither, with "
                             "target_contact_rate)")
        if all(values) and self.target_contact_rate is None:
            raise ValueError("business: give saved_customer_value and contact_cost, or target_contact_rate")
        return self


class Profile(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    description: str = ""
    shape: Literal["snapshot", "event_log"]
    source: SourceSpec = Field(default_factory=SourceSpec)
    # None (snapshots only): the file has no id column; each row gets ROW_ID, derived from its values
    customer_id: str | None = None
    label: LabelSpec | None = None      # snapshot
    numeric: list[str] = Field(default_factory=list)      # snapshot features
    categorical: list[str] = Field(default_factory=list)  # snapshot features
    drop: list[str] = Field(default_factory=list)         # identifiers and columns not to use
    pii: list[str] = Field(default_factory=list)          # personal data: hashed in silver, never features
    events: EventLogSpec | None = None  # event_log
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    business: BusinessSpec | None = None   # the decision threshold's costs (default: conf model.costs)
    checks: list[Rule] = Field(default_factory=list)      # extra rules, same vocabulary as conf/base/quality
    max_quarantine_rate: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _shape(self) -> "Profile":
        if self.shape == "snapshot":
            if self.label is None:
                raise ValueError("a snapshot profile needs 'label' (column, churned, retained)")
            if self.events is not None:
                raise ValueError("'events' belongs to event_log profiles")
            if not self.numeric and not self.categorical:
                raise ValueError("a snapshot profile needs feature columns under 'numeric' and/or 'categorical'")
        else:
            if self.events is None:
                raise ValueError("an event_log profile needs 'events' (timestamp, amount, horizon_days...)")
            if self.label is not None:
                raise ValueError("an event_log profile derives its label: remove 'label'")
        if self.shape == "event_log" and not self.customer_id:
            raise ValueError("an event_log profile needs customer_id: the column that says whose event a line is")
        if self.shape == "snapshot" and self.evaluation.method == "out_of_time":
            raise ValueError("evaluation.method out_of_time needs several cutoffs: use it with event_log profiles")
        if self.shape == "event_log" and self.events.amount and not self._amount_is_column():
            known = {normalize(c) for c in self.events.numeric}
            unknown = [i for i in amount_identifiers(self.events.amount) if i not in known]
            if unknown:
                raise ValueError(f"events.amount {self.events.amount!r} uses {unknown}: list them under events.numeric")
        roles = self.roles()
        seen: dict[str, str] = {}
        for role, cols in roles.items():
            for c in cols:
                n = normalize(c)
                if n in seen and seen[n] != role:
                    raise ValueError(f"column {c!r} is declared twice: as {seen[n]} and as {role}")
                seen[n] = role
        return self

    # ---- derived ------------------------------------------------------------------------------
    def roles(self) -> dict[str, list[str]]:
        """Declared columns by role, names as written in the profile."""
        r: dict[str, list[str]] = {"customer id": [self.customer_id] if self.customer_id else [],
                                   "pii": list(self.pii), "drop": list(self.drop)}
        if self.shape == "snapshot":
            r |= {"label": [self.label.column], "numeric": list(self.numeric), "categorical": list(self.categorical)}
        else:
            ev = self.events
            r |= {"timestamp": [ev.timestamp.column], "numeric": list(ev.numeric),
                  "categorical": list(ev.categorical), "order id": [ev.order_id] if ev.order_id else []}
            if ev.amount and self._amount_is_column():
                r["amount"] = [ev.amount]
        return r

    def _amount_is_column(self) -> bool:
        text = (self.events.amount or "").strip()
        return bool(text) and normalize(text) == text.lower().replace(" ", "_") and not _is_number(text) \
            and not re.search(r"[*/+()-]", text)

    @property
    def id_column(self) -> str:
        """The customer id column: the profile's, or ``ROW_ID`` derived from each row's values."""
        return normalize(self.customer_id) if self.customer_id else ROW_ID

    @property
    def numeric_columns(self) -> list[str]:
        cols = self.numeric if self.shape == "snapshot" else self.events.numeric
        return [normalize(c) for c in cols]

    @property
    def categorical_columns(self) -> list[str]:
        cols = self.categorical if self.shape == "snapshot" else self.events.categorical
        return [normalize(c) for c in cols]

    @property
    def table(self) -> str:
        return f"byod_{self.name}"


SQL_WORDS = {"and", "or", "not", "null", "cast", "as", "double", "abs", "coalesce", "greatest", "least", "case",
             "when", "then", "else", "end", "nvl"}


def amount_identifiers(expr: str) -> list[str]:
    """Column names an amount expression uses (normalized), SQL words excluded."""
    return [i.lower() for i in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr) if i.lower() not in SQL_WORDS]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"profile {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in exc.errors())
        raise ProfileError(f"{path}: invalid profile: {problems}") from None


def read_header(path: Path, profile: Profile) -> list[str]:
    """The file's column names (normalized), from its first line or the profile's column_names."""
    src = profile.source
    if not src.header:
        names = [normalize(c) for c in src.column_names or []]
    else:
        with open(path, encoding=src.encoding, errors="replace", newline="") as fh:
            first = fh.readline()
        if not first.strip():
            raise ProfileError(f"{path}: the first line is empty; expected a header (or set source.header: false)")
        names = [normalize(c) for c in split_line(first.rstrip("\r\n"), src)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ProfileError(f"{path}: header has columns that collide once normalized: {dupes}")
    return names


def split_line(line: str, src: SourceSpec) -> list[str]:
    import csv

    if src.format == "whitespace":
        return line.split()
    return next(csv.reader([line], delimiter=src.delimiter, strict=True), [])


def check_header(profile: Profile, header: list[str], file_label: str, optional: tuple[str, ...] = ()) -> list[str]:
    """Raise ProfileError naming every declared column missing from the file (roles in ``optional``
    may be missing); return undeclared ones."""
    declared = {normalize(c): (role, c) for role, cols in profile.roles().items() if role not in optional
                for c in cols}
    missing = []
    for norm, (role, written) in declared.items():
        if norm not in header:
            close = difflib.get_close_matches(norm, header, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            missing.append(f"{role} column {written!r}{hint}")
    if missing:
        raise ProfileError(f"{file_label}: profile '{profile.name}' names columns the file does not have: "
                           + "; ".join(missing) + f". The file's columns are: {', '.join(header)}")
    return [c for c in header if c not in declared]


_SPARK_TO_PY = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"),
                ("M", "%m"), ("d", "%d"), ("H", "%H"), ("'T'", "T")]


def _py_format(spark_pattern: str) -> str | None:
    """A Spark datetime pattern as a ``strptime`` format, for the patterns drafts use; None otherwise."""
    out, i = "", 0
    while i < len(spark_pattern):
        for token, py in _SPARK_TO_PY:
            if spark_pattern.startswith(token, i):
                out, i = out + py, i + len(token)
                break
        else:
            ch = spark_pattern[i]
            if ch.isalpha():
                return None  # a pattern letter this check does not know: Spark will judge it
            out, i = out + ch, i + 1
    return out


def check_sample(path: Path, profile: Profile, header: list[str], rows: int = 2000) -> list[str]:
    """Read the first ``rows`` data lines of ``path`` as the profile says and raise ProfileError with the
    line and value of the first thing that breaks: a line with another number of fields than the header,
    a header-less profile on a file whose first line is its header, a numeric column whose values are
    mostly not numbers, a timestamp no listed format reads, a label value the profile does not list.
    Returns notes on what passed with a few bad values (the pipeline's checks catch those)."""
    src = profile.source
    with open(path, encoding=src.encoding, errors="replace", newline="") as fh:
        lines = [(n, ln.rstrip("\r\n")) for n, ln in zip(range(1, rows + 2), fh)]
    data = [(n, ln) for n, ln in lines[1 if src.header else 0:] if ln.strip()]
    if not data:
        raise ProfileError(f"{path}: no data lines")
    first = [normalize(v) for v in split_line(data[0][1], src)]
    declared = {normalize(c) for cols in profile.roles().values() for c in cols}
    if not src.header and len(declared & set(first)) >= max(2, len(declared) // 2):
        raise ProfileError(f"{path}: line 1 looks like a header ({', '.join(first[:6])}...) but the profile has "
                           "source.header: false: set it to true (and drop source.column_names)")
    records = []
    for n, ln in data:
        try:
            fields = split_line(ln, src)
        except Exception as exc:  # csv.Error: an unclosed quote and the like
            raise ProfileError(f"{path}: line {n} does not split as {src.format} ({exc}): {ln[:120]!r}") from None
        if len(fields) != len(header):
            raise ProfileError(f"{path}: line {n} has {len(fields)} fields, the header {len(header)} (delimiter "
                               f"{src.delimiter!r} if csv; {src.format}): {ln[:120]!r}")
        records.append((n, dict(zip(header, fields))))
    notes: list[str] = []

    def column(c):
        return [(n, r[c].strip()) for n, r in records if r[c].strip()]

    for c in profile.numeric_columns:
        values = column(c)
        bad = [(n, v) for n, v in values if not _is_number(v.replace(",", ".") if src.decimal_comma else v)]
        if values and len(bad) * 2 >= len(values):
            raise ProfileError(f"{path}: numeric column {c!r}: {len(bad)} of {len(values)} values are not numbers, "
                               f"e.g. line {bad[0][0]}: {bad[0][1]!r} (wrong column, delimiter or decimal_comma?)")
        if bad:
            notes.append(f"numeric {c!r}: {len(bad)} of {len(values)} values not numbers (the checks catch them), "
                         f"e.g. line {bad[0][0]}: {bad[0][1]!r}")
    if profile.shape == "event_log":
        c = normalize(profile.events.timestamp.column)
        formats = [f for f in map(_py_format, profile.events.timestamp.formats) if f]
        if formats and len(formats) == len(profile.events.timestamp.formats):
            def reads(v):
                for f in formats:
                    try:
                        dt.datetime.strptime(v, f)
                        return True
                    except ValueError:
                        pass
                return False

            values = column(c)
            bad = [(n, v) for n, v in values if not reads(v)]
            if values and len(bad) * 2 >= len(values):
                raise ProfileError(f"{path}: no format of events.timestamp.formats "
                                   f"{profile.events.timestamp.formats} reads column {c!r}, e.g. line {bad[0][0]}: "
                                   f"{bad[0][1]!r}")
            if bad:
                notes.append(f"timestamp {c!r}: {len(bad)} of {len(values)} values unreadable (the checks catch them), "
                             f"e.g. line {bad[0][0]}: {bad[0][1]!r}")
    else:
        c = normalize(profile.label.column)
        known = {v.strip().lower() for v in profile.label.churned + profile.label.retained}
        unknown = [(n, v) for n, v in column(c) if v.lower() not in known]
        if unknown:
            raise ProfileError(f"{path}: label column {c!r} has values the profile lists neither as churned nor as "
                               f"retained: {sorted({v for _, v in unknown})[:10]}, e.g. line {unknown[0][0]}")
    return notes
