"""Data-quality rules as data: one YAML file per silver table under ``conf/base/quality/``.

Each file names the bronze source, the business key, the typed columns (with standardization and
imputation) and the rules. Loading validates every file with pydantic, so a typo in a rule fails
with the file and the rule named. See ``docs/data-quality.md`` for what each check means.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lakehouse.config import PROJECT_ROOT
from lakehouse.errors import ConfigError

QUALITY_DIR = PROJECT_ROOT / "conf" / "base" / "quality"
# order matters: referential checks read tables earlier in this list
TABLE_ORDER = ["customers", "subscriptions", "transactions", "web_events", "support_tickets", "nps_responses"]

REASON_CODES = {"complete": "MISSING", "pattern": "FORMAT", "allowed": "NOT_ALLOWED", "range": "OUT_OF_RANGE",
                "not_future": "OUT_OF_RANGE", "on_time": "LATE", "references": "ORPHAN", "type": "TYPE", "parse": "UNPARSEABLE"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    type: Literal["string", "int", "double", "date", "timestamp"]
    # trim: strip blanks, and text that is only blanks becomes null; lower/upper also trim
    # decimal_comma: as trim, and "12,5" reads as 12.5
    standardize: Literal["email", "country", "lower", "upper", "trim", "decimal_comma"] | None = None
    impute: str | None = None  # value used when null (after standardization)
    pii: bool = False
    formats: list[str] | None = None  # date/timestamp patterns to try (Spark datetime patterns)


class Rule(_Strict):
    """A row-level rule: evaluated per row (quarantine/keep) and as a Deequ constraint."""

    name: str
    check: Literal["complete", "pattern", "allowed", "range", "not_future", "on_time", "references"]
    column: str
    severity: Literal["error", "warning"]
    resolution: Literal["quarantine", "keep"]
    pattern: str | None = None
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None
    max_offset_years: int | None = None  # max = run year + offset (e.g. -16: at least 16 years old)
    table: str | None = None  # for references
    # the share of failing rows above which this rule fails the run (error) or warns
    max_failure_rate: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _params(self) -> "Rule":
        need = {"pattern": "pattern", "allowed": "values", "references": "table"}
        if self.check in need and getattr(self, need[self.check]) is None:
            raise ValueError(f"rule {self.name}: check '{self.check}' needs '{need[self.check]}'")
        if self.check == "range" and self.min is None and self.max is None and self.max_offset_years is None:
            raise ValueError(f"rule {self.name}: check 'range' needs min and/or max")
        return self


class DatasetRule(_Strict):
    name: str
    check: Literal["unique", "max_quarantine_rate", "row_count_anomaly", "completeness_anomaly", "freshness"]
    severity: Literal["error", "warning"]
    value: float | None = None
    max_increase: float | None = None
    max_decrease: float | None = None
    max_lag_days: int | None = None
    max_drop: float | None = None  # completeness_anomaly: largest accepted drop from the previous date


class TableRules(_Strict):
    table: str
    source: str
    bronze: str
    key: list[str]
    order_by: str
    event_time: str | None = None
    # "upsert": entities whose rows change (latest order_by wins; every accepted version is also kept
    # in silver/<table>_history, partitioned by _ingest_date, for point-in-time reads).
    # "insert_only": immutable events; a key already in silver is a re-delivery and is not rewritten,
    # so a row's _ingest_date is the date it first arrived (what gold's incremental build relies on).
    write_mode: Literal["upsert", "insert_only"] = "upsert"
    # insert_only with event_time: a new row's key is looked for among the stored rows whose event
    # time is at most this many days before the run date, not the whole table (Delta skips the older
    # files by their statistics), so a day's insert costs the window, not the history. Rows whose own
    # event time is older than the window (or unknown) are looked for in the whole table. Holds as long
    # as a re-delivered record keeps its event time. None: every insert reads every stored key.
    dedup_window_days: int | None = Field(default=None, ge=0)
    columns: dict[str, ColumnSpec]
    rules: list[Rule]
    dataset_rules: list[DatasetRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _columns_exist(self) -> "TableRules":
        for col in [*self.key, self.order_by, *([self.event_time] if self.event_time else [])]:
            if col not in self.columns:
                raise ValueError(f"'{col}' (key/order_by/event_time) is not a declared column")
        for rule in self.rules:
            if rule.column not in self.columns:
                raise ValueError(f"rule {rule.name}: column '{rule.column}' is not a declared column")
        if self.dedup_window_days is not None and (self.write_mode != "insert_only" or not self.event_time
                                                   or self.columns[self.event_time].type not in ("date", "timestamp")):
            raise ValueError("dedup_window_days needs write_mode insert_only and an event_time column of type "
                             "date or timestamp")
        return self

    def window_start(self, run_date: dt.date) -> dt.date | None:
        """The first day of the dedup window for ``run_date`` (None without ``dedup_window_days``)."""
        return None if self.dedup_window_days is None else run_date - dt.timedelta(days=self.dedup_window_days)

    def event_time_sql(self, day: dt.date) -> str:
        """SQL of ``day``'s first instant in the type of the event time column."""
        return f"CAST('{day.isoformat()}' AS {self.columns[self.event_time].type.upper()})"

    @property
    def pii_columns(self) -> list[str]:
        return [c for c, spec in self.columns.items() if spec.pii]


def load_rules(folder: Path | None = None) -> dict[str, TableRules]:
    """All tables' rules, keyed by silver table name, in processing order."""
    folder = folder or QUALITY_DIR
    found: dict[str, TableRules] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            rules = TableRules.model_validate(yaml.safe_load(path.read_text()))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path}: invalid quality rules: {problems}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        found[rules.table] = rules
    order = {t: i for i, t in enumerate(TABLE_ORDER)}
    return dict(sorted(found.items(), key=lambda kv: order.get(kv[0], len(order))))
