"""The silver stage: validate a date's bronze rows with PyDeequ and write silver, quarantine, metrics,
reconciliation and the quality report.

Per table, for logical date D:
  1. read bronze rows ingested on D; standardize, type and check them (``transform.annotate``);
  2. one Deequ VerificationSuite over them: every rule's compliance, key uniqueness, freshness and a
     row-count anomaly check against earlier dates (metrics repository);
  3. rows failing a quarantine rule -> ``silver/quarantine_<source>`` with rule and reason code;
     exact duplicates dropped; several versions of a key -> the latest (``order_by``) kept;
  4. gates: an error-severity rule whose failure rate exceeds its limit, or a quarantine rate over
     the table's limit, fails the table: its silver and quarantine are not written, the job fails
     with every failed rule and its counts; warnings are logged and reported;
  5. otherwise MERGE into ``silver/<table>`` on the business key (latest ``order_by`` wins), with
     personal data replaced by a keyed hash, and replace D's quarantine partition;
  6. always record metrics (``ops/quality_metrics``) and the reconciliation
     ``bronze = silver + quarantined + duplicates removed`` (``ops/reconciliation``), asserted.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import delta_io, tables
from lakehouse.config import Settings, secret
from lakehouse.errors import LakehouseError
from lakehouse.parallel import run_parallel
from lakehouse.quality.deequ_checks import verify
from lakehouse.quality.report import write_report
from lakehouse.quality.rules import TableRules, load_rules
from lakehouse.quality.transform import (
    all_checks,
    describe,
    flag,
    in_dedup_window,
    latest_ranked,
    original_json,
    pseudonymize,
    ranked,
    raw_where_broken,
    silver_columns,
    split,
)
from lakehouse.run_ids import new_run_id
from lakehouse.spark import CODE_GENERATION, estimated_mb, interpreted, session_conf, worth_compiling

log = logging.getLogger(__name__)
META = ["_source_file", "_line", "_fixes", "_warnings"]


class QualityGateError(LakehouseError):
    """Error-level quality rules failed; downstream work must not run on this date."""

    def __init__(self, message: str, result: "SilverResult"):
        super().__init__(message)
        self.result = result


@dataclass
class TableOutcome:
    table: str
    run_date: str
    bronze_rows: int
    silver_rows: int = 0
    quarantined: int = 0
    duplicates_removed: int = 0
    superseded: int = 0
    already_stored: int = 0  # valid rows whose key silver already held (re-delivered records), not inserted again
    outside_window: int = 0  # kept rows older than the table's dedup window: their keys looked up in the whole table
    lookback_days: int = 0  # days from the earliest event of the window's kept rows to the run date
    fixed_rows: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    silver_version: int | None = None
    rule_rows: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def balanced(self) -> bool:
        return self.bronze_rows == self.silver_rows + self.quarantined + self.duplicates_removed + self.superseded


@dataclass
class SilverResult:
    run_date: str
    run_id: str
    seconds: float
    tables: list[TableOutcome]

    def as_dict(self) -> dict:
        out = asdict(self)
        for t in out["tables"]:
            t.pop("rule_rows")
        return out


def _bronze_for(spark: SparkSession, settings: Settings, spec: TableRules, run_date: dt.date) -> DataFrame:
    uri = tables.bronze(spec.bronze).uri(settings)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"bronze.{spec.bronze} does not exist at {uri}: ingest {spec.source} first")
    return delta_io.read(spark, uri).where(F.col("_ingest_date") == F.lit(run_date.isoformat()).cast("date"))


def _references(spark: SparkSession, settings: Settings, spec: TableRules) -> dict[str, DataFrame]:
    refs = {}
    for rule in spec.rules:
        if rule.check == "references":
            uri = tables.silver(rule.table or "").uri(settings)
            if delta_io.is_delta(spark, uri):
                refs[rule.name] = delta_io.read(spark, uri).select(rule.column)
    return refs


def checked_rows(spark: SparkSession, settings: Settings, spec: TableRules, run_date: dt.date,
                 bronze: DataFrame, all_raw: bool = False) -> DataFrame:
    """``bronze`` typed and checked (``transform.flag``); from ``quality.partition_by_key_min_mb`` hash-partitioned
    on the business key first, so that the window over the key (``transform.ranked``) finds the rows
    partitioned (the shuffle moves bronze's columns, not the wider checked rows). Smaller dates skip it:
    there the extra stage costs more than it saves (docs/benchmarks.md). The rows as they came
    (``_raw_*``) are kept only on rows that break a rule (``transform.raw_where_broken``), unless
    ``all_raw`` (bring-your-own-data's findings read them on every row)."""
    if _large(settings, spec, bronze):
        bronze = bronze.repartition(*[F.col(f"`{k}`") for k in spec.key])
    flagged = flag(bronze, spec, run_date, _references(spark, settings, spec))
    return flagged if all_raw else raw_where_broken(flagged, spec)


def _large(settings: Settings, spec: TableRules, bronze: DataFrame) -> bool:
    """Whether a date's bronze rows are at least ``quality.partition_by_key_min_mb`` (and keyed)."""
    return set(spec.key) <= set(bronze.columns) and \
        estimated_mb(bronze) >= settings.quality.partition_by_key_min_mb


def named(rows: DataFrame, spec: TableRules, pii_key: str, kept_columns: list[str] = ()) -> DataFrame:
    """Silver's columns of ``rows``: personal data hashed, fixes and warnings named."""
    return pseudonymize(describe(rows, spec), spec, pii_key).select(*silver_columns(spec), *META, *kept_columns)


def quarantine_rows(quarantined: DataFrame, spec: TableRules, bronze_columns: list[str],
                    by: tuple[str, ...] = ()) -> DataFrame:
    """The rows to quarantine with their rule, reason code, every rule they break and the row as it came
    (and the ``by`` columns)."""
    return describe(quarantined, spec).select(*by,
        F.lit(spec.table).alias("table"), F.col("_quarantine_reason.rule").alias("rule"),
        F.col("_quarantine_reason.reason_code").alias("reason_code"),
        F.col("_violations.rule").alias("violations"),
        "_source_file", "_line", "_parse_error", original_json(bronze_columns).alias("_original"), "_raw_record")


def validate_table(spark: SparkSession, settings: Settings, spec: TableRules, run_date: dt.date, run_id: str,
                   pii_key: str, bronze: DataFrame | None = None,
                   all_raw: bool = False) -> tuple[TableOutcome, DataFrame, DataFrame, DataFrame]:
    """Check one table for one date (its bronze rows of that date, or the given ``bronze`` rows).

    Returns (outcome, silver rows to merge, quarantine rows, the cached checked rows they derive
    from); the caller unpersists the last once it has written the first two. The cached rows hold
    the values as they came (``_raw_*``) on the rows that break a rule only, or on every row with
    ``all_raw`` (``checked_rows``).
    """
    bronze = bronze if bronze is not None else _bronze_for(spark, settings, spec, run_date)
    # flag keeps every bronze row (a projection and a left join to distinct reference keys), so
    # the checked rows counted below are the bronze rows: no separate count of bronze. Ranked by
    # key before they are cached: one Deequ scan over them judges the rules and counts all the
    # reconciliation needs, and silver's rows (a key's latest kept version) are a filter of them
    checked = ranked(checked_rows(spark, settings, spec, run_date, bronze, all_raw), spec).cache()
    deequ, counts = verify(spark, checked, spec, run_date, tables.deequ_metrics_path(settings, spec.table))
    outcome = judge(settings, spec, run_date, counts, all_checks(spec, run_date), deequ)
    _, quarantined = split(checked, spec)
    silver = named(latest_ranked(checked, spec), spec, pii_key)
    quarantine = quarantine_rows(quarantined, spec, bronze.columns)
    if not _large(settings, spec, bronze):
        # the cache holds the window's shuffle partitions: a small date's rows are written as one
        # file each (a filter of the cache, read in one task), as bronze's one file gave them before
        silver, quarantine = silver.coalesce(1), quarantine.coalesce(1)
    else:
        # a large date's quarantine is a small share of it (capped where the table has a
        # max_quarantine_rate gate): its rows are found in parallel over the cache and shuffled into
        # one file, not one small file per partition
        quarantine = quarantine.repartition(1)
    return outcome, silver, quarantine, checked


def judge(settings: Settings, spec: TableRules, run_date: dt.date, counts: dict[str, int], checks: list[tuple],
          deequ: list) -> TableOutcome:
    """The outcome of one table for one date from its row counts (as ``row_counts`` makes them) and the Deequ
    constraints' outcomes: every rule's row, the failures and warnings, the gates; raises if the
    reconciliation does not balance."""
    names = [c[0] for c in checks]
    outcome = TableOutcome(spec.table, run_date.isoformat(), counts["rows"],
                           outside_window=counts.get("outside_window", 0), lookback_days=counts.get("lookback_days", 0))
    failing = {n: counts[n] for n in names}
    outcome.quarantined, outcome.fixed_rows, outcome.silver_rows = counts["quarantined"], counts["fixed"], counts["keys"]
    outcome.duplicates_removed = counts["rows"] - outcome.quarantined - counts["distinct_rows"]
    outcome.superseded = counts["distinct_rows"] - outcome.silver_rows

    resolution = {r.name: r.resolution for r in spec.rules}
    by_rule = {o.rule: o for o in deequ}
    for name, _, severity, max_rate in checks:
        o = by_rule.get(name)
        status = o.status if o else "Unknown"
        if outcome.bronze_rows == 0:  # nothing arrived: no rate to judge (Deequ reports NaN compliance)
            status = "Skipped"
        row = {"rule": name, "kind": "row", "severity": severity, "status": status,
               "metric": o.metric if o else None, "threshold": o.threshold if o else "",
               "failing_rows": failing[name], "resolution": resolution.get(name, "quarantine")}
        outcome.rule_rows.append(row)
        if status not in ("Success", "Skipped"):
            text = f"{spec.table}.{name} ({severity}): {failing[name]} of {outcome.bronze_rows} rows fail, " \
                   f"compliance {o.metric if o and o.metric is not None else float('nan'):.3f} (limit {max_rate:g} failing)"
            (outcome.failures if severity == "error" else outcome.warnings).append(text)
    for rule in spec.dataset_rules:
        if rule.check == "max_quarantine_rate":
            rate = outcome.quarantined / outcome.bronze_rows if outcome.bronze_rows else 0.0
            ok = rate <= (rule.value or 0.0)
            outcome.rule_rows.append({"rule": rule.name, "kind": "dataset", "severity": rule.severity,
                                      "status": "Success" if ok else "Failure", "metric": rate,
                                      "threshold": f"quarantined share <= {rule.value:g}",
                                      "failing_rows": outcome.quarantined, "resolution": "quarantine"})
            if not ok:
                text = f"{spec.table}.{rule.name} ({rule.severity}): {outcome.quarantined} of {outcome.bronze_rows} " \
                       f"rows quarantined ({rate:.1%} > {rule.value:.0%})"
                (outcome.failures if rule.severity == "error" else outcome.warnings).append(text)
            continue
        found = [o for o in deequ if o.rule == rule.name or o.rule.startswith(rule.name + ":")]
        for o in found:
            failing_rows = outcome.duplicates_removed + outcome.superseded if rule.check == "unique" else 0
            outcome.rule_rows.append({"rule": o.rule, "kind": "dataset", "severity": rule.severity, "status": o.status,
                                      "metric": o.metric, "threshold": o.threshold, "failing_rows": failing_rows,
                                      "resolution": "drop" if rule.check == "unique" else "report"})
            if o.status not in ("Success", "Skipped"):
                text = f"{spec.table}.{o.rule} ({rule.severity}): {o.message or o.threshold} (metric {o.metric})"
                (outcome.failures if rule.severity == "error" else outcome.warnings).append(text)

    if outcome.failures and outcome.bronze_rows < settings.quality.gate_min_rows:
        # a handful of rows cannot carry a rate: one bad row in two is 50 %; report, do not block
        outcome.warnings += [f"{f} [not gating: {outcome.bronze_rows} rows < quality.gate_min_rows "
                             f"{settings.quality.gate_min_rows}]" for f in outcome.failures]
        outcome.failures = []
    if not outcome.balanced:  # an invariant, not a rule: nothing may be lost between bronze and silver
        raise LakehouseError(f"{spec.table} {run_date}: reconciliation broken: bronze {outcome.bronze_rows} != "
                             f"silver {outcome.silver_rows} + quarantined {outcome.quarantined} + duplicates "
                             f"{outcome.duplicates_removed} + superseded {outcome.superseded}")
    return outcome


def record_metrics(spark: SparkSession, settings: Settings, outcomes: list[TableOutcome], run_id: str,
                    meta: str) -> None:
    """Quality metrics and reconciliation of every table of the run, one Delta commit each, the two side
    by side (``settings.parallelism``): each is a short chain of small Spark jobs and a commit, whose
    latency overlaps."""
    metrics_schema = T.StructType([T.StructField(n, t) for n, t in [
        ("table", T.StringType()), ("run_date", T.DateType()), ("rule", T.StringType()), ("kind", T.StringType()),
        ("severity", T.StringType()), ("status", T.StringType()), ("metric", T.DoubleType()),
        ("threshold", T.StringType()), ("failing_rows", T.LongType()), ("resolution", T.StringType()),
        ("run_id", T.StringType())]])
    if not outcomes:
        return
    days = sorted({o.run_date for o in outcomes})
    metrics = [(o.table, dt.date.fromisoformat(o.run_date), r["rule"], r["kind"], r["severity"], r["status"],
                float(r["metric"]) if r["metric"] is not None else None, r["threshold"], int(r["failing_rows"]),
                r["resolution"], run_id) for o in outcomes for r in o.rule_rows]
    recon = [(o.table, dt.date.fromisoformat(o.run_date), o.bronze_rows, o.silver_rows, o.quarantined,
              o.duplicates_removed, o.superseded, o.fixed_rows, o.balanced, o.passed, run_id) for o in outcomes]
    recon_schema = "table string, run_date date, bronze_rows long, silver_rows long, quarantined long, " \
                   "duplicates_removed long, superseded long, fixed_rows long, balanced boolean, passed boolean, " \
                   "run_id string"
    names = ", ".join(f"'{t}'" for t in sorted({o.table for o in outcomes}))
    dates = f"run_date = '{days[0]}'" if len(days) == 1 else f"run_date >= '{days[0]}' AND run_date <= '{days[-1]}'"
    where = f"{dates} AND table IN ({names})"
    writes = [(tables.QUALITY_METRICS, metrics, metrics_schema), (tables.RECONCILIATION, recon, recon_schema)]

    def write(session: SparkSession, item) -> None:
        table, rows, rows_schema = item
        delta_io.replace_where(session.createDataFrame(rows, rows_schema), table.uri(settings), where, meta)

    run_parallel(spark, writes, write, settings.parallelism, name=lambda item: f"{item[0].name} {where}")


def table_references(specs: dict[str, TableRules]) -> dict[str, set[str]]:
    """For each table, the other tables of ``specs`` whose silver its rules read (``references``)."""
    return {name: {r.table for r in spec.rules if r.check == "references" and r.table in specs and r.table != name}
            for name, spec in specs.items()}


def table_steps(specs: dict[str, TableRules]) -> list[list[str]]:
    """Tables in steps: a table whose rules reference another table's silver (``references``) comes
    in a later step than that table; the tables of one step are independent and can run side by side
    (two of one source share its quarantine table: a rare conflicting commit there is retried)."""
    refs = table_references(specs)
    level: dict[str, int] = {}

    def depth(name: str, seen: tuple = ()) -> int:
        if name not in level:
            if name in seen:
                raise LakehouseError(f"silver rules reference each other in a cycle: {' -> '.join(seen + (name,))}")
            level[name] = 1 + max((depth(t, seen + (name,)) for t in refs[name]), default=-1)
        return level[name]

    for name in specs:
        depth(name)
    return [[n for n in specs if level[n] == lv] for lv in sorted(set(level.values()))]


@contextmanager
def compiled_if_large(spark: SparkSession, settings: Settings, bronze: DataFrame, label: str):
    """Spark's code generation for the block if ``spark`` runs SQL interpreted and ``bronze`` is at least
    ``quality.compile_min_mb``. The local and test overlays run interpreted because a small date's
    queries cost more to compile than to run; a large date is the other way round (web_events, 947k
    rows, 19.5 MB: validation 8.5 s interpreted, 3.0 s compiled). Each silver task holds a session
    of its own (``lakehouse.parallel``), so the setting cannot reach another table's queries."""
    limit = settings.quality.compile_min_mb
    size = estimated_mb(bronze) if limit is not None and interpreted(spark) else 0.0  # (sized only if it can matter)
    if not worth_compiling(spark, settings, size):
        yield
        return
    log.info("%s: %.1f MiB of bronze >= quality.compile_min_mb %g: Spark SQL with code generation", label, size, limit)
    with session_conf(spark, CODE_GENERATION):
        yield


def _load_table(spark: SparkSession, settings: Settings, spec: TableRules, run_date: dt.date, run_id: str,
                pii_key: str) -> TableOutcome:
    """Validate one table for ``run_date`` and, if its gates pass, write silver, history and quarantine."""
    name = spec.table
    meta = delta_io.commit_metadata(run_id, "silver", run_date.isoformat(), table=name)
    bronze = _bronze_for(spark, settings, spec, run_date)
    with compiled_if_large(spark, settings, bronze, f"silver.{name} {run_date}"):
        outcome, silver, quarantine, checked = validate_table(spark, settings, spec, run_date, run_id, pii_key,
                                                              bronze=bronze)
        try:
            if outcome.passed:
                _write_table(spark, settings, spec, run_date, run_id, meta, outcome, silver, quarantine)
        finally:
            checked.unpersist()
    for w in outcome.warnings:
        log.warning("quality warning %s: %s", run_date, w)
    log.info("silver.%s %s: bronze %d = silver %d + quarantined %d + duplicates %d + superseded %d; "
             "%d rows fixed; %d already stored by an earlier delivery; %s", name, run_date, outcome.bronze_rows,
             outcome.silver_rows, outcome.quarantined, outcome.duplicates_removed, outcome.superseded,
             outcome.fixed_rows, outcome.already_stored,
             "passed" if outcome.passed else f"FAILED ({len(outcome.failures)} rule(s))")
    return outcome


def _write_table(spark: SparkSession, settings: Settings, spec: TableRules, run_date: dt.date, run_id: str,
                 meta: str, outcome: TableOutcome, silver: DataFrame, quarantine: DataFrame) -> None:
    name, day = spec.table, run_date.isoformat()
    uri = tables.silver(name).uri(settings)
    stamped = silver.withColumn("_ingest_date", F.lit(day).cast("date")).withColumn("_run_id", F.lit(run_id))
    # whether silver changed: if not, this is a re-run that brings the rows stored already, and the
    # history and quarantine slices are compared before they are rewritten (no new table versions)
    changed = True
    if outcome.silver_rows == 0 and delta_io.is_delta(spark, uri):
        changed = False  # nothing to merge (a MERGE of no rows commits nothing either)
    elif spec.write_mode == "insert_only":
        inserted = _insert_new(spark, spec, run_date, uri, stamped, meta, outcome.outside_window,
                               outcome.lookback_days)
        if inserted is not None:
            outcome.already_stored = outcome.silver_rows - inserted
        changed = inserted != 0
    else:
        changed = delta_io.merge_latest(spark, uri, stamped, spec.key, spec.order_by, meta)
    if spec.write_mode != "insert_only":
        history = tables.silver_history(name)
        h_uri = history.uri(settings)
        if changed or not delta_io.holds_exactly(spark, h_uri, f"_ingest_date = '{day}'", stamped, outcome.silver_rows):
            delta_io.replace_partition(stamped, h_uri, history.partition, day, meta)
    q_uri = tables.quarantine(spec.source).uri(settings)
    q_where = f"_ingest_date = '{day}' AND table = '{name}'"
    q = quarantine.withColumn("_ingest_date", F.lit(day).cast("date")).withColumn("_run_id", F.lit(run_id))
    # (an empty quarantine needs a commit only to create the table or to clear rows an earlier run left)
    if (changed and outcome.quarantined) or not delta_io.holds_exactly(spark, q_uri, q_where, q, outcome.quarantined):
        delta_io.replace_where(q, q_uri, q_where, meta)
    outcome.silver_version = delta_io.latest_version(spark, uri)


def _insert_new(spark: SparkSession, spec: TableRules, run_date: dt.date, uri: str, rows: DataFrame, meta: str,
                outside_window: int, lookback_days: int) -> int | None:
    """Insert the rows whose key silver does not hold yet; the number inserted (None if Delta did not say).

    Without ``dedup_window_days`` one MERGE reads every stored key: a day's insert grows with the
    table's history (947k events a day, on 1, 30 and 90 stored days: 2.9, 12.1 and 31.6 s; with the
    window 2.9, 2.6 and 2.2 s: ``lakehouse bench insert``). With it, the rows of the window are merged
    with a condition on the stored rows' event time, which Delta answers from its file statistics
    (files hold the days they were inserted on: older files are not read). The condition starts on
    the day of the earliest of those rows (``lookback_days``, from validation; a stored copy carries
    the same event time), not at the window's start, so a day with no late rows reads one or two days
    of stored keys. Rows older than the window (``outside_window``) are merged against the whole
    table, only when there are some."""
    start = spec.window_start(run_date)
    if start is None or not delta_io.is_delta(spark, uri):
        return delta_io.merge_insert_only(spark, uri, rows, spec.key, meta)
    since = max(start, run_date - dt.timedelta(days=lookback_days))
    recent = in_dedup_window(spec, run_date)
    inserted = delta_io.merge_insert_only(spark, uri, rows.where(recent), spec.key, meta,
                                          target_where=f"t.`{spec.event_time}` >= {spec.event_time_sql(since)}")
    if outside_window:
        log.info("silver.%s %s: %d row(s) older than the %d-day dedup window: keys looked up in the whole table",
                 spec.table, run_date, outside_window, spec.dedup_window_days)
        older = delta_io.merge_insert_only(spark, uri, rows.where(~recent), spec.key, meta)
        inserted = None if inserted is None or older is None else inserted + older
    return inserted


def run_silver(spark: SparkSession, settings: Settings, run_date: dt.date, tables: list[str] | None = None,
               run_id: str | None = None) -> SilverResult:
    """Validate and load every table (or ``tables``) for ``run_date``; raise QualityGateError on failures."""
    started = time.perf_counter()
    run_id = run_id or new_run_id("silver", run_date)
    rules = load_rules()
    unknown = set(tables or []) - set(rules)
    if unknown:
        raise LakehouseError(f"unknown silver table(s) {sorted(unknown)} (known: {', '.join(rules)})")
    pii_key = secret(settings.quality.pii_key_env, "quality.pii_key_env")
    selected = {name: spec for name, spec in rules.items() if not tables or name in tables}
    steps, refs = table_steps(selected), table_references(selected)
    log.info("silver %s: %d table(s), up to %d at a time, each once the tables it references are written: %s",
             run_date, len(selected), settings.parallelism, " then ".join("+".join(step) for step in steps))
    # a table starts when the tables it references are done, not when a whole step is: the small
    # tables that check customer ids run beside a large date's web events
    ordered = [name for step in steps for name in step]
    done = dict(zip(ordered, run_parallel(
        spark, ordered, lambda session, n: _load_table(session, settings, selected[n], run_date, run_id, pii_key),
        settings.parallelism, name=lambda n: f"silver.{n} {run_date}", after=lambda n: refs[n])))
    outcomes = [done[name] for name in selected]
    record_metrics(spark, settings, outcomes, run_id,
                    delta_io.commit_metadata(run_id, "silver", run_date.isoformat()))
    result = SilverResult(run_date.isoformat(), run_id, round(time.perf_counter() - started, 2), outcomes)
    failures = [f for o in outcomes for f in o.failures]
    if failures:
        raise QualityGateError(f"silver for {run_date} failed {len(failures)} error-level quality rule(s): "
                               + "; ".join(failures) + f" (run {run_id}; failing tables were not written; "
                               "see ops/quality_metrics and the quality report)", result)
    return result


def validate_and_report(spark, settings: Settings, run_date: dt.date, run_id: str | None = None,
                        tables: list[str] | None = None) -> SilverResult:
    """The silver step as jobs and the CLI run it: ``run_silver`` for ``run_date``, then the quality
    report, written whether the gates pass or not."""
    try:
        result = run_silver(spark, settings, run_date, tables, run_id)
    except QualityGateError as exc:
        where = write_report(spark, settings, run_date, exc.result.run_id, exc.result.tables)
        log.error("quality gates failed for %s; report: %s", run_date, where)
        raise
    write_report(spark, settings, run_date, result.run_id, result.tables)
    return result
