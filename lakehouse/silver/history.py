"""The silver stage for a range of dates at once (the history load), equal to daily runs of those dates.

Per table, the bronze rows of the whole range are read once, typed and checked once (each row judged
against the date it arrived: ``transform.ROW_DATE``), counted per arrival date in one aggregation and
checked by one Deequ suite over the range. What daily runs decide date by date is decided the same
way, per arrival date:

* the reconciliation, every rule's failing rows and the gates (``stage.judge``) of each date;
* the version kept per key within a date (``latest`` by key and date);
* upserted tables: the silver row a key ends with is the one sequential MERGEs would leave (the
  highest ``order_by``, nulls lowest, a tie won by the later date), and the history keeps each date's
  rows; insert-only tables keep a key's first arrival;
* a reference (``customers`` for the others) is valid from the date its key first arrived.

Nothing is written until every table of every date has passed its gates: a failure anywhere leaves
silver as it was and names the tables, dates and rules (``QualityGateError``). Then each table is
written in one commit per Delta table (silver, history, quarantine), and the quality metrics and
reconciliation of every date in one commit each. Deequ's row-count and completeness anomaly checks
compare one date with the previous and are not run by the history load (its metrics repository gets
no entries for the loaded dates); the quality report is written for the last date.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import Settings, secret
from lakehouse.errors import LakehouseError
from lakehouse.parallel import run_parallel
from lakehouse.quality.deequ_checks import ConstraintOutcome, run_deequ
from lakehouse.quality.report import write_report
from lakehouse.quality.rules import TableRules, load_rules
from lakehouse.quality.transform import (
    ROW_DATE,
    all_checks,
    flag,
    latest_ranked,
    ranked,
    raw_where_broken,
    row_counts_by,
    split,
)
from lakehouse.run_ids import new_run_id
from lakehouse.silver.stage import (
    QualityGateError,
    SilverResult,
    judge,
    named,
    quarantine_rows,
    record_metrics,
    table_references,
    table_steps,
)
from lakehouse.spark import cache_level, estimated_mb

log = logging.getLogger(__name__)
DAY = "_ingest_date"


def _between(first: dt.date, last: dt.date) -> str:
    return f"{DAY} >= '{first.isoformat()}' AND {DAY} <= '{last.isoformat()}'"


def _valid_keys(spark: SparkSession, settings: Settings, table: str, column: str, first: dt.date,
                loaded: dict[str, DataFrame]) -> DataFrame | None:
    """(key, the date it arrived) of ``table``'s accepted rows: stored before ``first``, and those of
    the range being loaded (``loaded``); None when there are none at all (the rule cannot be judged)."""
    spec_rows = loaded.get(table)
    history = tables.silver_history(table).uri(settings)
    plain = tables.silver(table).uri(settings)
    uri = history if delta_io.is_delta(spark, history) else plain
    parts = []
    if delta_io.is_delta(spark, uri):
        parts.append(delta_io.read(spark, uri).where(F.col(DAY) < F.lit(first.isoformat()).cast("date"))
                     .select(column, DAY))
    if spec_rows is not None:
        parts.append(spec_rows.select(column, DAY))
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def _deequ_rows(spec: TableRules, checks: list[tuple], counts: dict[str, int]) -> list[ConstraintOutcome]:
    """One date's row-rule outcomes from its counts, as Deequ's compliance reads them (share of rows
    that do not break the rule): the date's gate, decided per date as a daily run does."""
    out = []
    for name, _, severity, max_rate in checks:
        rows = counts["rows"]
        metric = 1.0 - counts[name] / rows if rows else None
        floor = 1.0 - max_rate
        status = "Success" if metric is None or metric >= floor else "Failure"
        out.append(ConstraintOutcome(name, severity, status, metric, f"compliance >= {floor:g}", ""))
    return out


def _validate(spark: SparkSession, settings: Settings, spec: TableRules, dates: list[dt.date], run_id: str,
              pii_key: str, loaded: dict[str, DataFrame]):
    """One table over the range: per-date outcomes, the rows to write, the cached frames to release."""
    first, last = dates[0], dates[-1]
    uri = tables.bronze(spec.bronze).uri(settings)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"bronze.{spec.bronze} does not exist at {uri}: ingest {spec.source} first")
    bronze = delta_io.read(spark, uri).where(_between(first, last))
    refs = {}
    for rule in spec.rules:
        if rule.check == "references":
            keys = _valid_keys(spark, settings, rule.table or "", rule.column, first, loaded)
            if keys is not None:
                refs[rule.name] = keys
    # ranked by key and arrival date before they are cached (one shuffle and sort): the counts per date
    # are sums of one aggregation, and the silver rows a filter
    insert_only = spec.write_mode == "insert_only"
    # (the values as they came only on the rows that break a rule, which the quarantine reads)
    level = cache_level(spark, settings.quality.history_cache, estimated_mb(bronze),
                        f"silver.{spec.table} {first}..{last}")
    checked = ranked(raw_where_broken(flag(bronze, spec, ROW_DATE, refs), spec), spec, by=(DAY,),
                     earliest=DAY if insert_only else None).persist(level)
    range_outcomes = run_deequ(spark, checked, spec, ROW_DATE, None)
    _, quarantined = split(checked, spec)
    checks = all_checks(spec, ROW_DATE)
    counts = row_counts_by(checked, spec, [c[0] for c in checks], (DAY,))
    empty = {"rows": 0, "quarantined": 0, "fixed": 0, "distinct_rows": 0, "keys": 0, **{c[0]: 0 for c in checks}}
    outcomes = []
    for day in dates:
        c = counts.get((day,), empty)
        outcomes.append(judge(settings, spec, day, c, checks, _deequ_rows(spec, checks, c)))
    if insert_only:
        # a key's first arrival (that date's latest version): the row daily insert-only MERGEs keep;
        # written once, so not cached
        per_day = named(latest_ranked(checked, spec, earliest=DAY), spec, pii_key, [DAY]).withColumn(
            "_run_id", F.lit(run_id))
    else:  # the history table keeps each date's rows, and the silver rows are chosen among them
        per_day = named(latest_ranked(checked, spec), spec, pii_key, [DAY]).withColumn(
            "_run_id", F.lit(run_id)).persist(level)
    quarantine = quarantine_rows(quarantined, spec, bronze.columns, by=(DAY,)).withColumn("_run_id", F.lit(run_id))
    failed = [o for o in range_outcomes if o.status not in ("Success", "Skipped")]
    log.info("silver.%s %s..%s: %d bronze rows checked once; Deequ over the range: %d constraint(s), %d below "
             "their floor over all dates (gates are judged per date)", spec.table, first, last,
             sum(o.bronze_rows for o in outcomes), len(range_outcomes), len(failed))
    return outcomes, per_day, quarantine, checked


def _write(spark: SparkSession, settings: Settings, spec: TableRules, first: dt.date, last: dt.date, meta: str,
           per_day: DataFrame, quarantine: DataFrame) -> None:
    """The table's silver, history and quarantine for the range: one commit each."""
    name = spec.table
    uri = tables.silver(name).uri(settings)
    key = [F.col(f"`{k}`") for k in spec.key]
    if spec.write_mode == "insert_only":  # per_day holds each key's first arrival: the row a daily run inserted
        delta_io.merge_insert_only(spark, uri, per_day, spec.key, meta)
    else:  # what MERGEs date after date leave: the highest order_by (nulls lowest), a tie to the later date
        w = Window.partitionBy(*key).orderBy(F.col(spec.order_by).desc_nulls_last(), F.col(DAY).desc())
        winners = per_day.withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")
        delta_io.merge_latest(spark, uri, winners, spec.key, spec.order_by, meta)
        history = tables.silver_history(name)
        delta_io.replace_where(per_day.repartition(DAY), history.uri(settings), _between(first, last), meta,
                               partition_by=history.partition_by)
    q_uri = tables.quarantine(spec.source).uri(settings)
    delta_io.replace_where(quarantine.coalesce(1), q_uri, f"{_between(first, last)} AND table = '{name}'", meta)


def load_silver_range(spark: SparkSession, settings: Settings, first: dt.date, last: dt.date,
                      run_id: str | None = None) -> list[SilverResult]:
    """Validate and load every table for every date of ``first..last``; one ``SilverResult`` per date.

    Raises QualityGateError (nothing written) when any table fails its gates on any date."""
    if last < first:
        raise LakehouseError(f"the range {first}..{last} is reversed")
    started = time.perf_counter()
    run_id = run_id or new_run_id("silver", last)
    dates = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    rules = load_rules()
    pii_key = secret(settings.quality.pii_key_env, "quality.pii_key_env")
    meta = delta_io.commit_metadata(run_id, "silver", last.isoformat(), first_date=first.isoformat())
    loaded: dict[str, DataFrame] = {}
    done: dict[str, tuple] = {}
    try:
        refs = table_references(rules)

        def validate(session, name):  # as a daily run takes them: each once the tables it references are done
            done[name] = _validate(session, settings, rules[name], dates, run_id, pii_key, loaded)
            loaded[name] = done[name][1]

        run_parallel(spark, [n for step in table_steps(rules) for n in step], validate, settings.parallelism,
                     name=lambda n: f"silver.{n} {first}..{last}", after=lambda n: refs[n])
        by_date = {day.isoformat(): [] for day in dates}
        for name in rules:
            for o in done[name][0]:
                by_date[o.run_date].append(o)
        failures = [f"{o.run_date} {f}" for name in rules for o in done[name][0] for f in o.failures]
        results = [SilverResult(day, run_id, 0.0, outs) for day, outs in by_date.items()]
        if failures:
            record_metrics(spark, settings, [o for r in results for o in r.tables], run_id, meta)
            report = write_report(spark, settings, last, run_id, by_date[last.isoformat()])
            raise QualityGateError(
                f"silver for {first}..{last} failed {len(failures)} error-level quality rule(s) on "
                f"{len({f.split(' ', 1)[0] for f in failures})} date(s): " + "; ".join(failures[:10])
                + (" ..." if len(failures) > 10 else "") + f" (run {run_id}; nothing was written to silver; "
                f"see ops/quality_metrics and {report})", results[-1])
        def write(session, name):  # tables of one source share its quarantine: a conflicting commit is retried
            _, per_day, quarantine, _ = done[name]
            _write(session, settings, rules[name], first, last,
                   delta_io.commit_metadata(run_id, "silver", last.isoformat(), first_date=first.isoformat(),
                                            table=name), per_day, quarantine)
            for o in done[name][0]:
                o.silver_version = delta_io.latest_version(session, tables.silver(name).uri(settings))

        run_parallel(spark, list(rules), write, settings.parallelism, name=lambda n: f"writing silver.{n}")
    finally:
        for _, per_day, _, checked in done.values():
            per_day.unpersist()
            checked.unpersist()
    record_metrics(spark, settings, [o for r in results for o in r.tables], run_id, meta)
    write_report(spark, settings, last, run_id, by_date[last.isoformat()])
    seconds = round(time.perf_counter() - started, 2)
    for r in results:
        r.seconds = seconds
    log.info("silver %s..%s: %d table(s) x %d date(s) loaded in %.1fs: %d bronze rows = %d silver + %d quarantined "
             "+ %d duplicates + %d superseded", first, last, len(rules), len(dates), seconds,
             *[sum(getattr(o, f) for r in results for o in r.tables)
               for f in ("bronze_rows", "silver_rows", "quarantined", "duplicates_removed", "superseded")])
    return results
