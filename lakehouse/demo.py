"""``make demo``: stand up the simulated sources and run the pipeline end to end on embedded defaults.

Steps today: generate the sources, start the support API simulator on 127.0.0.1, then for each date
ingest every source into the raw zone and bronze and validate it with PyDeequ into silver (with the
quality report), all in one Spark session, then print where everything is. Later stages join here
as they land.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time

from lakehouse import logs
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError

log = logging.getLogger(__name__)
SOURCES = ["crm", "billing", "web", "support_api"]


def run_demo(settings: Settings, days: int | None = None) -> int:
    from lakehouse.browse import raw_partitions
    from lakehouse.ingest.run import ingest_source
    from lakehouse.quality.run import validate_and_report
    from lakehouse.quality_runtime import shutdown_deequ
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
    results = []
    quality = []
    try:
        for day in dates:
            for source in SOURCES:
                with logs.file_log(run_settings.path(run_settings.logs_dir) / f"ingest_{source}", f"{day}.log"):
                    results.append(ingest_source(spark, run_settings, source, day))
            with logs.file_log(run_settings.path(run_settings.logs_dir) / "silver", f"{day}.log"):
                silver = validate_and_report(spark, run_settings, day)
            quality.append(silver)
            log.info("ingested and validated %s (%d/%d dates)", day, dates.index(day) + 1, len(dates))
        tables = _bronze_counts(spark, run_settings)
        silver_tables = _silver_counts(spark, run_settings)
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
    print(f"  logs              : {run_settings.path(run_settings.logs_dir)}")
    print("  browse            : .venv/bin/lakehouse lake ls | lake raw billing transactions "
          f"{dates[0]} | lake table bronze web_events")
    return 0


def _silver_counts(spark, settings: Settings) -> dict[str, tuple[int, int]]:
    from pyspark.sql import functions as F

    from lakehouse import delta_io
    from lakehouse.quality.rules import load_rules
    from lakehouse.storage import table_uri

    counts = {}
    for name, spec in load_rules().items():
        q_uri = table_uri(settings, "silver", f"quarantine_{spec.source}")
        quarantined = (delta_io.read(spark, q_uri).where(F.col("table") == name).count()
                       if delta_io.is_delta(spark, q_uri) else 0)
        counts[name] = (delta_io.read(spark, table_uri(settings, "silver", name)).count(), quarantined)
    return counts


def _bronze_counts(spark, settings: Settings) -> dict[str, int]:
    from lakehouse import delta_io
    from lakehouse.storage import table_uri
    from lakehouse.tables import bronze_table

    counts = {}
    for source in SOURCES:
        for type_ in settings.source_types(source):
            name = bronze_table(source, type_)
            counts[name] = delta_io.read(spark, table_uri(settings, "bronze", name)).count()
    return counts
