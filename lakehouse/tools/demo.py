"""``make demo``: stand up the simulated sources and run the pipeline end to end on embedded defaults.

Steps: generate the sources, start the support API simulator on 127.0.0.1, then load most of the
simulated history in one pass per stage (``pipeline.load_history``: every source into the raw zone and
bronze, PyDeequ validation into silver with the quality report, gold's activity, point-in-time
features and matured labels, the online store), run the last ``demo.daily_days`` dates through the
daily path (``pipeline.run_range``, as the schedule would), all in one Spark session; then the last
date's model stages in the daily pipeline's order (score with the champion, retrain if flagged: no
champion yet or drift; a new champion then scores the date), the EDA report of the last date, and
print the champion, its out-of-time metrics, the customers most at risk and where everything is.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time

from lakehouse import tables
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline import SOURCES

log = logging.getLogger(__name__)


def run_demo(settings: Settings, days: int | None = None) -> int:
    from lakehouse.browse import raw_partitions
    from lakehouse.eda import run_eda
    from lakehouse.pipeline import DATA_STAGES, load_history, run_range, run_stage
    from lakehouse.quality.runtime import shutdown_deequ
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session
    from lakehouse.storage import storage_for

    started = time.perf_counter()
    sim = settings.simulator
    out = settings.path(sim.output_dir)
    log.info("generating simulated sources into %s", out)
    summary = generate_sources(sim, out)
    token = os.environ.get(sim.api.token_env)
    if not token:
        raise LakehouseError(f"set {sim.api.token_env} (the support API token); `make demo` sets a local one")
    server = ApiServer(out / "support", token, host=sim.api.host, port=0, rate_limit_per_s=sim.api.rate_limit_per_s,
                       failure_rate=sim.api.failure_rate, slow_rate=sim.api.slow_rate,
                       slow_seconds=sim.api.slow_seconds, seed=sim.seed).start()
    # the demo's API listens on a free port; point the pipeline at it for this run
    run_settings = load_settings(settings.env, overrides={"sources": {"support_api": {"base_url": server.url}}})
    n_days = min(days or settings.demo.days, sim.days)
    dates = [sim.start_date + dt.timedelta(days=i) for i in range(n_days)]
    n_daily = min(settings.demo.daily_days, n_days - 1)
    history, daily = dates[:n_days - n_daily], dates[n_days - n_daily:]
    spark = build_session(run_settings, "demo")
    trained = scored = None
    try:
        loaded = load_history(spark, run_settings, history[0], history[-1], today=dates[-1])
        log.info("history %s..%s loaded in %.0fs; now %d date(s) through the daily path", history[0], history[-1],
                 loaded["seconds"]["total"], len(daily))
        timings = run_range(spark, run_settings, daily, DATA_STAGES)
        # the last date's model stages in the daily pipeline's order (score, then retrain if flagged);
        # a champion that retraining just registered then scores the date too, so the demo ends with scores
        last = dates[-1]
        scored = run_stage(spark, run_settings, "score", last)
        trained = run_stage(spark, run_settings, "retrain", last)
        if trained.get("trained"):
            scored = run_stage(spark, run_settings, "score", last)
        eda = run_eda(spark, run_settings, last)
        top = _most_at_risk(spark, run_settings, last)
        tables = _bronze_counts(spark, run_settings)
        silver_tables = _silver_counts(spark, run_settings)
        gold_tables = _gold_counts(spark, run_settings)
    finally:
        server.stop()
        shutdown_deequ(spark)
        spark.stop()

    storage = storage_for(run_settings)
    parts = list(raw_partitions(storage))
    elapsed = time.perf_counter() - started
    print()
    print(f"Churn Lakehouse demo: {len(dates)} day(s) from {dates[0]} to {dates[-1]} in {elapsed:.0f}s")
    print(f"  history load      : {history[0]}..{history[-1]} ({len(history)} dates) in {loaded['seconds']['total']:.0f}s "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in loaded['seconds'].items() if k != 'total')}); "
          f"then {len(daily)} daily run(s): {', '.join(d.isoformat() for d in daily)}")
    print(f"  simulated sources : {out}  ({summary['customers']} customers, {summary['churned']} churned, "
          f"{sum(summary['faults'].values())} injected faults; ground truth in {out / 'ground_truth'})")
    print(f"  lake              : {run_settings.lake_uri}")
    print(f"  raw zone          : {len(parts)} partitions under {storage.join('raw')}")
    for name, rows in tables.items():
        print(f"  bronze.{name:<20}: {rows} rows")
    print(f"  ingestion audit   : {storage.join('ops/ingest_audit')} (Delta)")
    for name, (rows, quarantined) in silver_tables.items():
        print(f"  silver.{name:<20}: {rows} rows ({quarantined} quarantined over the run)")
    print(f"  quality report    : {storage.join('reports/quality')}/date={last}/report.html "
          "(+ quality.csv, trend PNGs; one folder per daily date)")
    print(f"  quality metrics   : {storage.join('ops/quality_metrics')}, {storage.join('ops/reconciliation')} (Delta)")
    for name, rows in gold_tables.items():
        print(f"  gold.{name:<22}: {rows} rows")
    print(f"  EDA report        : {eda['dir']}/report.html ({len(eda['files'])} files)")
    print(f"  online store      : {run_settings.path(run_settings.feature_store.online_path)} "
          "(.venv/bin/lakehouse features online C0000001)")
    if trained and trained.get("trained"):
        best = trained["best"]
        m = trained["metrics"][best]
        print(f"  model             : {run_settings.model.name} v{trained['registered_version']} ({best}): out-of-time "
              f"ROC AUC {m['roc_auc']:.3f}, lift in the top decile {m['lift_top_decile']:.2f}; champion "
              f"v{trained['champion_version']}{' (promoted)' if trained['promoted'] else ''}")
        for algo, am in trained["metrics"].items():
            print(f"      {algo:<22} ROC AUC {am['roc_auc']:.3f}  PR AUC {am['pr_auc']:.3f}  "
                  f"lift@10% {am['lift_top_decile']:.2f}")
    elif trained:
        print(f"  model             : not trained: {trained.get('reason')}")
    if scored and not scored.get("skipped"):
        print(f"  scores            : {scored['scored']} customers for {last} with v{scored['model_version']}: "
              f"{scored['risk_bands']}; max feature PSI {scored['max_psi']}")
        print("  most at risk      : " + ", ".join(f"{r['customer_id']} {r['probability']:.2f}" for r in top[:5]))
        print("                      " + ", ".join(f"{r['customer_id']} {r['probability']:.2f}" for r in top[5:]))
    print(f"  MLflow            : {run_settings.mlflow.tracking_uri}; browse it with `make mlflow` "
          "(serves it on http://127.0.0.1:5000)")
    slowest = max(timings, key=lambda t: sum(v for k, v in t.items() if k != "date"))
    print(f"  per-date stages   : first {timings[0]}, slowest {slowest}")
    print(f"  logs              : {run_settings.path(run_settings.logs_dir)}")
    print("  browse            : .venv/bin/lakehouse lake ls | lake raw billing transactions "
          f"{dates[0]} | lake table bronze web_events")
    return 0


def _most_at_risk(spark, settings: Settings, day: dt.date, n: int = 10) -> list[dict]:
    """The ``n`` customers with the highest churn probability scored for ``day`` (none without scores)."""
    from pyspark.sql import functions as F

    from lakehouse import delta_io

    uri = tables.SCORES.uri(settings)
    if not delta_io.is_delta(spark, uri):
        return []
    rows = (delta_io.read(spark, uri).where(F.col("score_date") == F.lit(day.isoformat()).cast("date"))
            .orderBy(F.col("probability").desc(), "customer_id").limit(n).collect())
    return [r.asDict() for r in rows]


def _gold_counts(spark, settings: Settings) -> dict[str, int]:
    from lakehouse import delta_io

    out = {}
    for table in (tables.ACTIVITY, tables.FEATURES, tables.LABELS, tables.SCORES):
        uri = table.uri(settings)
        out[table.name] = delta_io.read(spark, uri).count() if delta_io.is_delta(spark, uri) else 0
    return out


def _silver_counts(spark, settings: Settings) -> dict[str, tuple[int, int]]:
    from pyspark.sql import functions as F

    from lakehouse import delta_io
    from lakehouse.quality.rules import load_rules

    counts = {}
    for name, spec in load_rules().items():
        q_uri = tables.quarantine(spec.source).uri(settings)
        quarantined = (delta_io.read(spark, q_uri).where(F.col("table") == name).count()
                       if delta_io.is_delta(spark, q_uri) else 0)
        counts[name] = (delta_io.read(spark, tables.silver(name).uri(settings)).count(), quarantined)
    return counts


def _bronze_counts(spark, settings: Settings) -> dict[str, int]:
    from lakehouse import delta_io
    from lakehouse.tables import bronze_table

    counts = {}
    for source in SOURCES:
        for type_ in settings.source_types(source):
            name = bronze_table(source, type_)
            counts[name] = delta_io.read(spark, tables.bronze(name).uri(settings)).count()
    return counts
