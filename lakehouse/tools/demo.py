"""``make demo``: stand up the simulated sources and run the pipeline end to end on embedded defaults.

Steps: generate the sources, start the support API simulator on 127.0.0.1, then for each date ingest
every source into the raw zone and bronze, validate with PyDeequ into silver (with the quality
report), build gold (activity, point-in-time features, matured labels) and materialize the online
store, all in one Spark session (``lakehouse.pipeline.DATA_STAGES``); then the last date's model stages
in the daily pipeline's order (score with the champion, retrain if flagged: no champion yet or
drift; a new champion then scores the date), and print where everything is.
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
    from lakehouse.pipeline import DATA_STAGES, run_range, run_stage
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
    spark = build_session(run_settings, "demo")
    trained = scored = None
    try:
        timings = run_range(spark, run_settings, dates, DATA_STAGES)
        # the last date's model stages in the daily pipeline's order (score, then retrain if flagged);
        # a champion that retraining just registered then scores the date too, so the demo ends with scores
        last = dates[-1]
        scored = run_stage(spark, run_settings, "score", last)
        trained = run_stage(spark, run_settings, "retrain", last)
        if trained.get("trained"):
            scored = run_stage(spark, run_settings, "score", last)
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
    print(f"  simulated sources : {out}  ({summary['customers']} customers, {summary['churned']} churned, "
          f"{sum(summary['faults'].values())} injected faults; ground truth in {out / 'ground_truth'})")
    print(f"  lake              : {run_settings.lake_uri}")
    print(f"  raw zone          : {len(parts)} partitions under {storage.join('raw')}")
    for name, rows in tables.items():
        print(f"  bronze.{name:<20}: {rows} rows")
    print(f"  ingestion audit   : {storage.join('ops/ingest_audit')} (Delta)")
    for name, (rows, quarantined) in silver_tables.items():
        print(f"  silver.{name:<20}: {rows} rows ({quarantined} quarantined over the run)")
    print(f"  quality reports   : {storage.join('reports/quality')}/date=<D>/report.html (+ quality.csv, trend PNGs)")
    print(f"  quality metrics   : {storage.join('ops/quality_metrics')}, {storage.join('ops/reconciliation')} (Delta)")
    for name, rows in gold_tables.items():
        print(f"  gold.{name:<22}: {rows} rows")
    print(f"  online store      : {run_settings.path(run_settings.feature_store.online_path)} "
          "(.venv/bin/lakehouse features online C0000001)")
    if trained and trained.get("trained"):
        best = trained["best"]
        print(f"  model             : {run_settings.model.name} v{trained['registered_version']} ({best}, out-of-time "
              f"ROC AUC {trained['metrics'][best]['roc_auc']:.3f}); champion v{trained['champion_version']}; "
              f"MLflow {run_settings.mlflow.tracking_uri}")
    elif trained:
        print(f"  model             : not trained: {trained.get('reason')}")
    if scored and not scored.get("skipped"):
        print(f"  scores            : {scored['scored']} customers for {last} with v{scored['model_version']}: "
              f"{scored['risk_bands']}; max feature PSI {scored['max_psi']}")
    slowest = max(timings, key=lambda t: sum(v for k, v in t.items() if k != "date"))
    print(f"  per-date stages   : first {timings[0]}, slowest {slowest}")
    print(f"  logs              : {run_settings.path(run_settings.logs_dir)}")
    print("  browse            : .venv/bin/lakehouse lake ls | lake raw billing transactions "
          f"{dates[0]} | lake table bronze web_events")
    return 0


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
