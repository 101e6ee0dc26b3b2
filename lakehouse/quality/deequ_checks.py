"""The Deequ pass: every rule of a table as a constraint, in one VerificationSuite run (one scan).

The row-level rules are judged on the outcomes ``transform.flag`` left in the checked rows' bits
(``transform.check_flags``), not evaluated again. A daily run (``verify``) also has the suite count
what the reconciliation sums (rows, quarantined, fixed, each rule's failing rows, the dedup window's
counts) in the same scan, as analyzers of their own: no aggregation of the checked rows besides it.

Metrics go to Deequ's file-system metrics repository under ``<lake>/ops/deequ_metrics/<table>.json``,
keyed by the logical date (not the wall clock), so a re-run replaces that date's entry and the
row-count anomaly check compares against earlier dates only.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.quality.rules import TableRules
from lakehouse.quality.runtime import import_pydeequ
from lakehouse.quality.transform import (
    KEY_ROWS,
    RANK,
    all_checks,
    check_flags,
    distinct_at_first,
    fixed,
    kept_first,
    quarantined,
    window_rows,
)

log = logging.getLogger(__name__)


@dataclass
class ConstraintOutcome:
    rule: str
    severity: str
    status: str  # Success | Failure
    metric: float | None
    threshold: str
    message: str


def _epoch_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def run_deequ(spark: SparkSession, annotated: DataFrame, spec: TableRules, run_date: "dt.date | str",
              repository_path: str | None) -> list[ConstraintOutcome]:
    """Every rule of ``spec`` over ``annotated`` (``transform.flag``-ed rows) in one VerificationSuite.
    ``run_date`` a date: the rows of that date, metrics kept in the repository and the anomaly checks
    judged against earlier dates; ``transform.ROW_DATE`` with no repository: rows of many dates (the
    history load), each judged against its own arrival date, without the anomaly checks (they compare
    one date with the next)."""
    return _run(spark, annotated, spec, run_date, repository_path, None)[0]


COUNTED = ("quarantined", "fixed", "outside_window")  # counted as Deequ Compliance metrics named _<name>


def verify(spark: SparkSession, annotated: DataFrame, spec: TableRules, run_date: dt.date,
           repository_path: str | None) -> tuple[list[ConstraintOutcome], dict[str, int]]:
    """``run_deequ`` for one date, and from the same scan the sums ``transform.row_counts`` makes
    (``rows``, ``quarantined``, ``fixed``, each row rule's failing rows, and with a dedup window
    ``outside_window`` and ``lookback_days``): Deequ's Size, and each count as a Compliance metric
    (share of rows) times it. A share of n rows times n rounds back to the count exactly: doubles
    are exact far beyond any table-date's rows."""
    data = annotated.withColumn("_quarantined", quarantined(spec)).withColumn("_fixed", fixed(spec))
    windowed = spec.window_start(run_date) is not None
    if windowed:  # the rows transform.window_counts counts
        outside, days = window_rows(spec, run_date, ~quarantined(spec))
        data = data.withColumn("_outside_window", outside).withColumn("_lookback_days", days)
    counted = [c for c in COUNTED if windowed or c != "outside_window"]
    by_key = RANK in annotated.columns
    if by_key:  # transform.ranked rows: the keys (silver's rows) and the distinct rows counted here too
        data = data.withColumn("_latest", kept_first(spec)).withColumn(
            "_distinct_first", F.coalesce(distinct_at_first(), F.lit(0)))
        counted.append("latest")
    outcomes, metrics = _run(spark, data, spec, run_date, repository_path, (counted, windowed, by_key))
    rows = int(metrics.get("Size", {}).get("*") or 0)

    def share(name: str) -> int:
        value = metrics.get("Compliance", {}).get(name)
        return int(round(value * rows)) if rows and value is not None else 0

    totals = {"rows": rows, **{c: share(f"_{c}") for c in counted}}
    totals.update({name: rows - share(name) for name, *_ in all_checks(spec, run_date)})
    if windowed:
        furthest = metrics.get("Maximum", {}).get("_lookback_days")
        totals["lookback_days"] = int(round(furthest)) if furthest is not None else 0
    if by_key:
        distinct = metrics.get("Sum", {}).get("_distinct_first")
        totals["keys"] = totals.pop("latest")
        totals["distinct_rows"] = int(round(distinct)) if rows and distinct is not None else 0
    return outcomes, totals


def _required(suite, spark: SparkSession, analyzer):
    """``analyzer`` computed in the suite's scan without a check on it (Deequ's ``addRequiredAnalyzer``,
    which pydeequ does not wrap); its metric comes back with the others."""
    analyzer._set_jvm(spark._jvm)
    suite._VerificationRunBuilder.addRequiredAnalyzer(analyzer._analyzer_jvm)
    return suite


def _run(spark: SparkSession, annotated: DataFrame, spec: TableRules, run_date: "dt.date | str",
         repository_path: str | None, counts: tuple[list[str], bool, bool] | None) -> tuple[list[ConstraintOutcome], dict]:
    """The suite over ``annotated``: the outcomes, and Deequ's metrics by name and instance. ``counts``:
    (the boolean columns to count as Compliance metrics ``_<name>``, whether to take the maximum of
    ``_lookback_days``, whether to sum ``_distinct_first``), all columns of ``annotated``.

    Over ``transform.ranked`` rows a ``unique`` rule is the Compliance of ``_key_rows = 1`` among the rows
    with a key, the same ratio as Deequ's Uniqueness (keys of one row over rows with a key), in the
    suite's one scan rather than in a grouping of its own."""
    import_pydeequ()
    from pydeequ.analyzers import Completeness, Compliance, Maximum, Size, Sum
    from pydeequ.anomaly_detection import AbsoluteChangeStrategy, RelativeRateOfChangeStrategy
    from pydeequ.checks import Check, CheckLevel
    from pydeequ.repository import FileSystemMetricsRepository, ResultKey
    from pydeequ.verification import VerificationResult, VerificationSuite

    data = annotated
    if spec.event_time:
        # freshness looks at rows that passed: one quarantined row stamped in 2099 must not make a
        # stale batch look fresh (Deequ's minimum skips nulls)
        day = F.expr(run_date) if isinstance(run_date, str) else F.lit(run_date.isoformat()).cast("date")
        lag = F.datediff(day, F.to_date(spec.event_time))
        data = data.withColumn("_event_lag_days", F.when(~quarantined(spec), lag))
    suite = VerificationSuite(spark).onData(data)
    if repository_path is not None:
        repo = FileSystemMetricsRepository(spark, repository_path)
        key = ResultKey(spark, _epoch_ms(run_date), {"table": spec.table, "date": run_date.isoformat()})
        suite = suite.useRepository(repo).saveOrAppendResult(key)
    if counts is not None:
        columns, lookback, distinct = counts
        suite = _required(suite, spark, Size())
        for c in columns:
            suite = _required(suite, spark, Compliance(f"_{c}", f"`_{c}`"))
        if lookback:
            suite = _required(suite, spark, Maximum("_lookback_days"))
        if distinct:
            suite = _required(suite, spark, Sum("_distinct_first"))
    thresholds: dict[str, tuple[str, str]] = {}

    def level(sev: str):
        return CheckLevel.Error if sev == "error" else CheckLevel.Warning

    flags = check_flags(spec)
    for name, _, severity, max_rate in all_checks(spec, run_date):
        floor = 1.0 - max_rate
        check = Check(spark, level(severity), name).satisfies(f"NOT ({flags[name]})", name, lambda x, f=floor: x >= f)
        suite = suite.addCheck(check)
        thresholds[name] = (severity, f"compliance >= {floor:g}")
    for rule in spec.dataset_rules:
        if rule.check == "unique":
            floor = 1.0 - (rule.value if rule.value is not None else 0.05)
            check = Check(spark, level(rule.severity), rule.name)
            if KEY_ROWS in annotated.columns:
                keyed = " OR ".join(f"`{k}` IS NOT NULL" for k in spec.key)
                check = check.satisfies(f"`{KEY_ROWS}` = 1", rule.name, lambda x, f=floor: x >= f).where(keyed)
            else:
                check = check.hasUniqueness(spec.key, lambda x, f=floor: x >= f)
            suite = suite.addCheck(check)
            thresholds[rule.name] = (rule.severity, f"uniqueness >= {floor:g}")
        elif rule.check == "freshness" and spec.event_time:
            lag = rule.max_lag_days or 1
            suite = suite.addCheck(Check(spark, level(rule.severity), rule.name)
                                   .hasMin("_event_lag_days", lambda m, g=lag: m <= g))
            thresholds[rule.name] = (rule.severity, f"newest event at most {lag} day(s) old")
        elif repository_path is None:
            continue
        elif rule.check == "row_count_anomaly":
            strategy = RelativeRateOfChangeStrategy(maxRateDecrease=rule.max_decrease or 0.0,
                                                    maxRateIncrease=rule.max_increase or 1e9)
            suite = suite.addAnomalyCheck(strategy, Size())
            thresholds[rule.name] = (rule.severity,
                                     f"row count change within x{rule.max_decrease or 0:g}..x{rule.max_increase or 0:g}")
        elif rule.check == "completeness_anomaly":
            drop = rule.max_drop if rule.max_drop is not None else 0.05
            for col in sorted({r.column for r in spec.rules if r.check == "complete"}):
                suite = suite.addAnomalyCheck(AbsoluteChangeStrategy(maxRateDecrease=-drop, maxRateIncrease=1.0),
                                              Completeness(col))
                thresholds[f"{rule.name}:{col}"] = (rule.severity, f"completeness of {col} drops by at most {drop:g}")
    result = suite.run()
    rows = VerificationResult.checkResultsAsDataFrame(spark, result).collect()
    metrics = {}
    for m in VerificationResult.successMetricsAsDataFrame(spark, result).collect():
        metrics.setdefault(m["name"], {})[m["instance"]] = m["value"]
    outcomes = []
    for r in rows:
        check_name = r["check"]
        if check_name not in thresholds:  # anomaly checks are named by Deequ after their analyzer
            text = f"{r['check']} {r['constraint']}"
            if "Completeness(" in text:
                col = text.split("Completeness(", 1)[1].split(",", 1)[0]
                base = next((d.name for d in spec.dataset_rules if d.check == "completeness_anomaly"), "completeness")
                check_name = f"{base}:{col}"
            else:
                check_name = next((d.name for d in spec.dataset_rules if d.check == "row_count_anomaly"), check_name)
        severity, threshold = thresholds.get(check_name, ("warning", ""))
        status = r["constraint_status"]
        if "have to be previous results" in (r["constraint_message"] or ""):
            status = "Skipped"  # the first date of a table has no history to compare with
        outcomes.append(ConstraintOutcome(check_name, severity, status,
                                          _metric_for(r["constraint"], metrics), threshold,
                                          r["constraint_message"] or ""))
    return outcomes, metrics


def _metric_for(constraint: str, metrics: dict) -> float | None:
    """Pick the metric value a constraint was judged on (compliance, uniqueness, minimum, size)."""
    if constraint.startswith("ComplianceConstraint"):
        name = constraint.split("Compliance(", 1)[1].split(",", 1)[0]
        # (a filtered one is named "Compliance (where: <filter>)")
        return next((by[name] for metric, by in metrics.items()
                     if metric.split(" (where: ", 1)[0] == "Compliance" and name in by), None)
    if constraint.startswith("UniquenessConstraint"):
        vals = list(metrics.get("Uniqueness", {}).values())
        return vals[0] if vals else None
    if constraint.startswith("MinimumConstraint"):
        return metrics.get("Minimum", {}).get("_event_lag_days")
    if "Completeness(" in constraint:
        col = constraint.split("Completeness(", 1)[1].split(",", 1)[0]
        return metrics.get("Completeness", {}).get(col)
    if "Size" in constraint or "Anomaly" in constraint:
        return metrics.get("Size", {}).get("*")
    return None
