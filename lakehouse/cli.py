"""The ``lakehouse`` command line. ``lakehouse --help`` lists the subcommands.

Foreseeable problems (bad config, unreachable lake or source) end with one ``error:`` line and
exit code 2; a ``-v`` flag adds debug logging.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from lakehouse import logs
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse")


def _settings(args) -> Settings:
    return load_settings(args.env)


# ---- config / check ---------------------------------------------------------------------------
def cmd_config(args) -> int:
    settings = _settings(args)
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def cmd_check(args) -> int:
    from lakehouse.storage import storage_for

    settings = _settings(args)
    storage_for(settings).check()
    print(f"ok: env={settings.env} lake={settings.lake_uri}")
    return 0


# ---- simulator --------------------------------------------------------------------------------
def _sim_config(settings: Settings, args):
    sim = settings.simulator
    updates = {}
    if args.customers:
        updates["customers"] = args.customers
    if args.days:
        updates["days"] = args.days
    if args.seed is not None:
        updates["seed"] = args.seed
    if args.scale:
        updates["customers"] = int(updates.get("customers", sim.customers) * args.scale)
    return sim.model_copy(update=updates)


def cmd_simulate_generate(args) -> int:
    from lakehouse.simulator.systems import generate_sources

    settings = _settings(args)
    sim = _sim_config(settings, args)
    out = settings.path(args.output or sim.output_dir)
    started = time.perf_counter()
    summary = generate_sources(sim, out, postgres_url=args.postgres_url)
    print(json.dumps(summary, indent=2))
    print(f"sources written to {out} in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_simulate_serve_api(args) -> int:
    import os

    from lakehouse.simulator.api import ApiServer

    settings = _settings(args)
    api = settings.simulator.api
    token = os.environ.get(api.token_env)
    if not token:
        raise LakehouseError(f"set {api.token_env} to the token the API should require")
    folder = settings.path(settings.simulator.output_dir) / "support"
    server = ApiServer(folder, token, host=api.host, port=args.port or api.port,
                       rate_limit_per_s=api.rate_limit_per_s, failure_rate=api.failure_rate,
                       slow_rate=api.slow_rate, slow_seconds=api.slow_seconds, seed=settings.simulator.seed)
    print(f"support API simulator on {server.url} (Ctrl-C to stop)")
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# ---- ingestion and the lake ------------------------------------------------------------------
def cmd_ingest(args) -> int:
    from lakehouse.ingest.run import ingest_source
    from lakehouse.spark import build_session

    settings = _settings(args)
    spark = build_session(settings, f"ingest_{args.source}")
    try:
        for day in args.dates:
            result = ingest_source(spark, settings, args.source, day)
            print(json.dumps(result.as_dict(), indent=2, default=str))
    finally:
        spark.stop()
    return 0


def cmd_silver(args) -> int:
    from lakehouse.quality.run import validate_and_report
    from lakehouse.quality_runtime import shutdown_deequ
    from lakehouse.spark import build_session

    settings = _settings(args)
    spark = build_session(settings, "silver")
    try:
        for day in args.dates:
            result = validate_and_report(spark, settings, day, tables=args.tables)
            print(json.dumps(result.as_dict(), indent=2, default=str))
    finally:
        shutdown_deequ(spark)
        spark.stop()
    return 0


def cmd_run(args) -> int:
    from lakehouse.quality_runtime import shutdown_deequ
    from lakehouse.runner import run_range
    from lakehouse.spark import build_session

    settings = _settings(args)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    spark = build_session(settings, "run")
    try:
        timings = run_range(spark, settings, args.dates, stages)
    finally:
        shutdown_deequ(spark)
        spark.stop()
    for t in timings:
        print(json.dumps(t))
    return 0


def cmd_lake_ls(args) -> int:
    from lakehouse.browse import format_partitions, raw_partitions
    from lakehouse.storage import storage_for

    settings = _settings(args)
    parts = list(raw_partitions(storage_for(settings), args.source, args.type))
    print(format_partitions(parts))
    return 0


def cmd_lake_raw(args) -> int:
    from lakehouse.browse import raw_sample

    print(raw_sample(_settings(args), args.source, args.type, args.date, args.lines))
    return 0


def cmd_lake_table(args) -> int:
    from lakehouse.browse import table_sample
    from lakehouse.spark import build_session

    settings = _settings(args)
    spark = build_session(settings, "browse")
    try:
        print(table_sample(spark, settings, args.layer, args.name, args.date, args.limit))
    finally:
        spark.stop()
    return 0


def _dates(value: str):
    """YYYY-MM-DD or an inclusive range YYYY-MM-DD:YYYY-MM-DD."""
    import datetime as dt

    from lakehouse.jobrunner import parse_date

    first, _, last = value.partition(":")
    start, end = parse_date(first), parse_date(last or first)
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def cmd_bench_ingest(args) -> int:
    from lakehouse.bench import bench_ingest

    settings = _settings(args)
    scales = [float(x) for x in args.scales.split(",")]
    root = settings.path(".")
    results = bench_ingest(settings, scales, args.days, root / "bench-results" / "ingest.json",
                           root / "docs" / "benchmarks-ingest.md")
    print(f"{len(results)} measurements written to bench-results/ingest.json and docs/benchmarks-ingest.md")
    return 0


def cmd_bench_validation(args) -> int:
    from lakehouse.bench import bench_validation

    settings = _settings(args)
    root = settings.path(".")
    results = bench_validation(settings, [float(x) for x in args.scales.split(",")],
                               root / "bench-results" / "validation.json", root / "docs" / "benchmarks-validation.md")
    print(f"{len(results)} measurements written to bench-results/validation.json and docs/benchmarks-validation.md")
    return 0


# ---- demo -------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from lakehouse import demo

    settings = _settings(args)
    return demo.run_demo(settings, days=args.days)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lakehouse", description="Churn Lakehouse pipeline commands")
    p.add_argument("--env", default="local", help="configuration overlay under conf/ (default: local)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("config", help="print the merged, validated configuration")
    s.set_defaults(func=cmd_config)
    s = sub.add_parser("check", help="validate configuration and check that the lake root is usable")
    s.set_defaults(func=cmd_check)

    sim = sub.add_parser("simulate", help="the simulated source systems").add_subparsers(dest="sim", required=True)
    s = sim.add_parser("generate", help="simulate the business and write every source system's data")
    s.add_argument("--customers", type=int)
    s.add_argument("--days", type=int)
    s.add_argument("--scale", type=float, help="multiply the configured number of customers")
    s.add_argument("--seed", type=int)
    s.add_argument("--output", help="folder (default: simulator.output_dir)")
    s.add_argument("--postgres-url", help="also load the CRM tables into PostgreSQL (postgresql://...)")
    s.set_defaults(func=cmd_simulate_generate)
    s = sim.add_parser("serve-api", help="serve the support/NPS vendor API until interrupted")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_simulate_serve_api)

    s = sub.add_parser("ingest", help="ingest one source for a date or a date range (one Spark session)")
    s.add_argument("source", choices=["crm", "billing", "web", "support_api"])
    s.add_argument("--run-date", dest="dates", required=True, type=_dates,
                   help="YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD (inclusive)")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("silver", help="validate bronze with PyDeequ into silver for a date or range; write the report")
    s.add_argument("--run-date", dest="dates", required=True, type=_dates,
                   help="YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD (inclusive)")
    s.add_argument("--tables", nargs="*", help="only these silver tables")
    s.set_defaults(func=cmd_silver)

    s = sub.add_parser("run", help="run the daily pipeline for a date or range in one Spark session")
    s.add_argument("--run-date", dest="dates", required=True, type=_dates,
                   help="YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD (inclusive)")
    s.add_argument("--stages", default="ingest,silver,gold,materialize",
                   help="comma-separated, from: ingest, silver, gold, materialize, score")
    s.set_defaults(func=cmd_run)

    lake = sub.add_parser("lake", help="browse the lake").add_subparsers(dest="lake", required=True)
    s = lake.add_parser("ls", help="list raw partitions with sizes and manifests")
    s.add_argument("--source")
    s.add_argument("--type")
    s.set_defaults(func=cmd_lake_ls)
    s = lake.add_parser("raw", help="show a raw partition's manifest and first records")
    s.add_argument("source")
    s.add_argument("type")
    s.add_argument("date")
    s.add_argument("--lines", type=int, default=10)
    s.set_defaults(func=cmd_lake_raw)
    s = lake.add_parser("table", help="show a sample of a Delta table")
    s.add_argument("layer", help="bronze, silver, gold or ops")
    s.add_argument("name")
    s.add_argument("--date", help="only this _ingest_date")
    s.add_argument("--limit", type=int, default=10)
    s.set_defaults(func=cmd_lake_table)

    bench = sub.add_parser("bench", help="benchmarks (write results; assert nothing)").add_subparsers(
        dest="bench", required=True)
    s = bench.add_parser("ingest", help="ingest time per source per day at several scales")
    s.add_argument("--scales", default="1,10", help="comma-separated multipliers of simulator.customers")
    s.add_argument("--days", type=int, default=4)
    s.set_defaults(func=cmd_bench_ingest)

    s = bench.add_parser("validation", help="validation cost against a plain scan of the same table")
    s.add_argument("--scales", default="1,10")
    s.set_defaults(func=cmd_bench_validation)

    s = sub.add_parser("demo", help="generate the sources and run the pipeline end to end")
    s.add_argument("--days", type=int, help="only the first N days (default: all simulated days)")
    s.set_defaults(func=cmd_demo)

    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.verbose)
    try:
        return args.func(args)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
