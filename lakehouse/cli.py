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
from contextlib import contextmanager
from pathlib import Path

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

    settings = _settings(args)
    with _spark(settings, "silver") as spark:
        for day in args.dates:
            result = validate_and_report(spark, settings, day, tables=args.tables)
            print(json.dumps(result.as_dict(), indent=2, default=str))
    return 0


def cmd_run(args) -> int:
    from lakehouse.runner import run_range

    settings = _settings(args)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    with _spark(settings, "run") as spark:
        timings = run_range(spark, settings, args.dates, stages)
    for t in timings:
        print(json.dumps(t))
    return 0


@contextmanager
def _spark(settings, name):
    """A Spark session for one command, stopped however the command ends (with PyDeequ's callback
    server, which otherwise keeps the process alive)."""
    from lakehouse.quality_runtime import shutdown_deequ
    from lakehouse.spark import build_session

    spark = build_session(settings, name)
    try:
        yield spark
    finally:
        shutdown_deequ(spark)
        spark.stop()


def _print_rows(rows: list[dict]) -> None:
    if not rows:
        print("(no rows)")
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c)).ljust(widths[c]) for c in cols))


def cmd_features_list(args) -> int:
    from lakehouse.featurestore.registry import load_registry

    reg = load_registry()
    rows = [{"feature": f"{v.name}:{f.name}", "version": f.version, "dtype": f.dtype, "ttl_days": v.ttl_days,
             "tags": ",".join(f.tags), "description": f.description} for v, f in reg.all_features()]
    _print_rows(rows)
    return 0


def cmd_features_describe(args) -> int:
    from lakehouse.featurestore.registry import load_registry

    reg = load_registry()
    view, feat = reg.resolve(args.name)
    versions = [f for f in view.features if f.name == feat.name]
    print(f"{view.name}:{feat.name}  (entity {reg.entity.name} by {reg.entity.key})")
    print(f"  view source : {view.source.layer}.{view.source.table}, timestamp {view.timestamp}, "
          f"TTL {view.ttl_days} days, owner {feat.owner or view.owner}")
    for f in versions:
        print(f"  v{f.version}{' (current)' if f is feat else ''}: {f.dtype}; {f.description}")
        print(f"      expression : {f.sql}")
        print(f"      fingerprint: {f.fingerprint()}; tags: {', '.join(f.tags) or '-'}")
    return 0


def cmd_features_lock(args) -> int:
    from lakehouse.featurestore.registry import write_lock

    path, added = write_lock()
    print(f"{path}: {len(added)} new version(s) locked{': ' + ', '.join(added) if added else ''}")
    return 0


def cmd_features_docs(args) -> int:
    from lakehouse.featurestore.docs import write_docs

    print(write_docs())
    return 0


def cmd_features_online(args) -> int:
    import time

    from lakehouse.featurestore.store import OnlineStore

    settings = _settings(args)
    store = OnlineStore(settings)
    t = time.perf_counter()
    rows = store.get(args.ids, args.features)
    ms = (time.perf_counter() - t) * 1000
    print(json.dumps(rows, indent=2, default=str))
    print(f"({len(rows)} customer(s) in {ms:.2f} ms from {store.path})", file=sys.stderr)
    return 0


def cmd_features_serve(args) -> int:
    from lakehouse.featurestore.server import serve

    serve(_settings(args), args.host, args.port)
    return 0


def cmd_sql(args) -> int:
    from lakehouse import catalog

    settings = _settings(args)
    with _spark(settings, "sql") as spark:
        tables = catalog.register(spark, settings)
        if args.setup:
            print(f"registered: {', '.join(tables)}")
        queries = []
        if args.file:
            queries = catalog.run_queries(spark, settings, Path(args.file))
        elif args.query:
            queries = [("query", spark.sql(args.query))]
        for name, df in queries:
            print(f"-- {name}")
            df.show(args.limit, truncate=False)
    return 0


def cmd_table_history(args) -> int:
    from lakehouse.versioning import history

    settings = _settings(args)
    with _spark(settings, "table-history") as spark:
        _print_rows(history(spark, settings, args.table, args.limit))
    return 0


def cmd_table_diff(args) -> int:
    from lakehouse.versioning import diff

    settings = _settings(args)
    with _spark(settings, "table-diff") as spark:
        print(json.dumps(diff(spark, settings, args.table, args.v1, args.v2, args.key), indent=2))
    return 0


def cmd_table_restore(args) -> int:
    from lakehouse.versioning import restore

    settings = _settings(args)
    with _spark(settings, "table-restore") as spark:
        print(json.dumps(restore(spark, settings, args.table, args.version), indent=2))
    return 0


def cmd_table_vacuum(args) -> int:
    from lakehouse.versioning import tables, vacuum

    settings = _settings(args)
    with _spark(settings, "table-vacuum") as spark:
        names = [args.table] if args.table else [f"{layer}.{n}" for layer, n in tables(spark, settings)]
        for name in names:
            print(json.dumps(vacuum(spark, settings, name, dry_run=not args.apply)))
    return 0


def cmd_erase(args) -> int:
    from lakehouse.erasure import erase_customer

    settings = _settings(args)
    if not args.yes:
        raise LakehouseError("erase rewrites tables and raw files and (without --no-purge) destroys older "
                             "table versions; add --yes to confirm")
    with _spark(settings, "erase") as spark:
        result = erase_customer(spark, settings, args.customer_id, args.requested_on, purge=not args.no_purge)
    print(json.dumps(result.as_dict(), indent=2))
    return 0


def cmd_backfill_check(args) -> int:
    from lakehouse.backfill_check import backfill_check

    result = backfill_check(Path(args.work), args.days, args.customers, args.env)
    print(json.dumps({k: v for k, v in result.items() if k != "tables"}, indent=2))
    return 0 if result["identical"] else 1


def cmd_runs(args) -> int:
    from lakehouse.versioning import ledger

    settings = _settings(args)
    with _spark(settings, "runs") as spark:
        df = ledger(spark, settings, args.run_id).orderBy("recorded_at", "table")
        if not args.run_id:
            from pyspark.sql import functions as F

            df = (df.groupBy("run_id", "job", "run_date", "status").agg(
                F.round(F.max("seconds"), 1).alias("seconds"),
                F.sum(F.when(F.col("role") == "write", 1).otherwise(0)).alias("tables_written"),
                F.sum(F.when(F.col("role") == "write", F.col("rows")).otherwise(0)).alias("rows_written"),
                F.sum(F.when(F.col("role") == "read", 1).otherwise(0)).alias("tables_read"),
                F.max("recorded_at").alias("recorded_at")).orderBy(F.col("recorded_at").desc()).limit(args.limit))
        _print_rows([r.asDict() for r in df.collect()])
    return 0


def cmd_tasks(args) -> int:
    from lakehouse import runlog

    settings = _settings(args)
    with _spark(settings, "tasks") as spark:
        df = runlog.summary(spark, settings, args.dag_run_id, args.date.isoformat() if args.date else None)
        rows = [r.asDict() for r in df.select("recorded_at", "run_date", "job", "status", "seconds", "rows_in",
                                              "rows_out", "quality", "try_number", "dag_run_id", "error")
                .collect()][-args.limit:]
    for r in rows:
        r["error"] = (r["error"] or "")[:120]
    _print_rows(rows)
    return 0


def cmd_eda(args) -> int:
    from lakehouse.eda import run_eda

    settings = _settings(args)
    with _spark(settings, "eda") as spark:
        result = run_eda(spark, settings, args.date, Path(args.out) if args.out else None)
    print(json.dumps({k: v for k, v in result.items() if k != "segments"}, indent=2, default=str))
    return 0


def cmd_byod_example(args) -> int:
    from lakehouse.byod.example import write_examples

    planted = write_examples(Path(args.out), args.customers, args.seed)
    for name, p in planted.items():
        print(f"{Path(args.out) / name}: {p.rows} lines, {p.customers} customers, {p.duplicates} duplicate lines, "
              f"blanks {p.blanks}, unparseable {p.unparseable}")
    return 0


def cmd_byod_check(args) -> int:
    from lakehouse.byod.profile import check_header, load_profile, read_header

    profile = load_profile(args.profile)
    header = read_header(Path(args.file), profile)
    undeclared = check_header(profile, header, args.file)
    print(f"ok: profile '{profile.name}' ({profile.shape}) fits {args.file}: {len(header)} columns"
          + (f"; not in the profile (ignored): {', '.join(undeclared)}" if undeclared else ""))
    return 0


def cmd_byod_init(args) -> int:
    from lakehouse.byod.draft import draft_profile

    text = draft_profile(Path(args.file), args.shape, args.id, args.label, args.timestamp, args.name)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}; review it, then: lakehouse byod check {args.out} --file {args.file}")
    else:
        print(text)
    return 0


def cmd_byod_run(args) -> int:
    from lakehouse.byod.profile import load_profile
    from lakehouse.byod.run import run_profile

    settings = _settings(args)
    profile = load_profile(args.profile)
    with _spark(settings, f"byod-{profile.name}") as spark:
        result = run_profile(spark, settings, profile, Path(args.file), args.run_date,
                             Path(args.out) if args.out else None)
    summary = {"profile": result.profile, "rows": result.rows, "split": result.split["rows"], "best": result.best,
               "roc_auc": {a: round(m["roc_auc"], 4) for a, m in result.metrics.items()},
               "registered_version": result.registered, "seconds": result.seconds,
               "report": str(Path(result.out_dir) / "model_report.md")}
    print(json.dumps(summary, indent=2))
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


def _numbers(kind: type, what: str):
    """An argparse type: a comma-separated list of positive numbers of ``kind`` (int or float)."""
    def parse(value: str) -> list:
        try:
            numbers = [kind(x) for x in value.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of {what}") from None
        if any(n <= 0 for n in numbers):
            raise argparse.ArgumentTypeError(f"{value!r}: every {what[:-1] if what.endswith('s') else what} "
                                             "must be above 0")
        return numbers
    return parse


COUNTS = _numbers(int, "whole numbers")


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
    scales = args.scales
    root = settings.path(".")
    results = bench_ingest(settings, scales, args.days, root / "bench-results" / "ingest.json",
                           root / "docs" / "benchmarks-ingest.md")
    print(f"{len(results)} measurements written to bench-results/ingest.json and docs/benchmarks-ingest.md")
    return 0


def cmd_bench_cpu(args) -> int:
    from lakehouse.bench import bench_cpu

    settings = _settings(args)
    root = settings.path(".")
    r = bench_cpu(settings, args.days, root / "bench-results" / "cpu.json", root / "docs" / "benchmarks-cpu.md")
    print(f"{r['days']} dates in {r['wall_s']} s: {r['spark_jobs']} Spark jobs, JVM CPU {r['jvm_cpu_s']} s, "
          f"Python CPU {r['python_cpu_s']} s; bench-results/cpu.json and docs/benchmarks-cpu.md")
    return 0


def cmd_bench_validation(args) -> int:
    from lakehouse.bench import bench_validation

    settings = _settings(args)
    root = settings.path(".")
    results = bench_validation(settings, args.scales,
                               root / "bench-results" / "validation.json", root / "docs" / "benchmarks-validation.md")
    print(f"{len(results)} measurements written to bench-results/validation.json and docs/benchmarks-validation.md")
    return 0


def cmd_bench_insert(args) -> int:
    from lakehouse.bench import bench_insert

    settings = _settings(args)
    root = settings.path(".")
    results = bench_insert(settings, args.history, root / "bench-results" / "insert.json",
                           root / "docs" / "benchmarks-insert.md", rows_per_day=args.rows_per_day)
    print(f"{len(results)} measurements written to bench-results/insert.json and docs/benchmarks-insert.md")
    return 0


def cmd_bench_entities(args) -> int:
    from lakehouse.bench import bench_entities

    settings = _settings(args)
    root = settings.path(".")
    results = bench_entities(settings, args.subscriptions, args.ages,
                             root / "bench-results" / "entities.json", root / "docs" / "benchmarks-entities.md")
    print(f"{len(results)} measurements written to bench-results/entities.json and docs/benchmarks-entities.md")
    return 0


def cmd_bench_train(args) -> int:
    from lakehouse.bench_train import bench_train

    settings = _settings(args)
    root = settings.path(".")
    results = bench_train(settings, args.customers, args.dates,
                          root / "bench-results" / "train.json", root / "docs" / "benchmarks-train.md",
                          cv_max_rows=args.cv_max_rows, spark_memory=args.spark_memory,
                          cv_parallelism=args.cv_parallelism)
    print(f"{len(results)} measurements written to bench-results/train.json and docs/benchmarks-train.md")
    return 0


def cmd_bench_online(args) -> int:
    from lakehouse.bench import bench_online

    settings = _settings(args)
    root = settings.path(".")
    result = bench_online(settings, args.lookups, root / "bench-results" / "online.json",
                          root / "docs" / "benchmarks-online.md")
    print(json.dumps(result, indent=2))
    return 0


def cmd_bench_jvm(args) -> int:
    from lakehouse.jvm_archive import bench_startup

    root = _settings(args).path(".")
    results = bench_startup(args.runs, root / "bench-results" / "jvm.json", root / "docs" / "benchmarks-jvm.md")
    print(json.dumps(results, indent=2))
    return 0


def cmd_bench_gold(args) -> int:
    from lakehouse.bench import bench_gold

    settings = _settings(args)
    root = settings.path(".")
    results = bench_gold(settings, [d for part in args.dates.split(",") for d in _dates(part)],
                         root / "bench-results" / "gold.json", root / "docs" / "benchmarks-gold.md")
    print(f"{len(results)} measurements written to bench-results/gold.json and docs/benchmarks-gold.md")
    return 0


def cmd_bench_features(args) -> int:
    from lakehouse.bench_features import bench_features

    settings = _settings(args)
    root = settings.path(".")
    results = bench_features(args.customers, args.history,
                             root / "bench-results" / "features.json", root / "docs" / "benchmarks-features.md",
                             spark_memory=args.spark_memory)
    print(f"{len(results)} scale(s) measured, outputs equal across engines; bench-results/features.json, "
          "docs/benchmarks-features.md")
    return 0


# ---- demo -------------------------------------------------------------------------------------
def cmd_cluster_local_run(args) -> int:
    from lakehouse.localcluster import local_run

    result = local_run(Path(args.out), args.customers, args.days, args.env, args.worker_cores, args.worker_memory)
    print(json.dumps({k: v for k, v in result.items() if k != "task_runs"}, indent=2))
    print(result["task_runs"])
    return 0


def cmd_walkthrough(args) -> int:
    from lakehouse.walkthrough import run

    print(json.dumps(run(Path(args.out), Path(args.work), args.customers, args.shots_only), indent=2))
    return 0


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

    feats = sub.add_parser("features", help="the feature registry and online store").add_subparsers(
        dest="features", required=True)
    s = feats.add_parser("list", help="every feature version in the registry")
    s.set_defaults(func=cmd_features_list)
    s = feats.add_parser("describe", help="one feature: its versions, expressions, view and TTL")
    s.add_argument("name", help="name, name@vN or view:name")
    s.set_defaults(func=cmd_features_describe)
    s = feats.add_parser("lock", help="record fingerprints of new feature versions")
    s.set_defaults(func=cmd_features_lock)
    s = feats.add_parser("docs", help="regenerate docs/features.md from the registry")
    s.set_defaults(func=cmd_features_docs)
    s = feats.add_parser("online", help="latest feature values of customers from the online store")
    s.add_argument("ids", nargs="+")
    s.add_argument("--features", nargs="*")
    s.set_defaults(func=cmd_features_online)
    s = feats.add_parser("serve", help="serve GET /features/<customer_id> from the online store")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8770)
    s.set_defaults(func=cmd_features_serve)

    s = sub.add_parser("sql", help="register the lake's tables by name and run SQL")
    s.add_argument("query", nargs="?", help="a SQL statement")
    s.add_argument("--file", help="a .sql file of named statements (e.g. lakehouse/sql/sample_queries.sql)")
    s.add_argument("--setup", action="store_true", help="only apply the DDL and list the tables")
    s.add_argument("--limit", type=int, default=20)
    s.set_defaults(func=cmd_sql)

    table = sub.add_parser("table", help="Delta versions: history, diff, restore, vacuum").add_subparsers(
        dest="table_cmd", required=True)
    s = table.add_parser("history", help="versions with the run, job and date that wrote them")
    s.add_argument("table", help="<layer>.<name>, e.g. silver.customers")
    s.add_argument("--limit", type=int, default=20)
    s.set_defaults(func=cmd_table_history)
    s = table.add_parser("diff", help="rows added, removed and changed between two versions")
    s.add_argument("table")
    s.add_argument("v1", type=int)
    s.add_argument("v2", type=int)
    s.add_argument("--key", nargs="*", help="business key columns (to count changed rows)")
    s.set_defaults(func=cmd_table_diff)
    s = table.add_parser("restore", help="roll a table back to a version (a new version, history kept)")
    s.add_argument("table")
    s.add_argument("version", type=int)
    s.set_defaults(func=cmd_table_restore)
    s = table.add_parser("vacuum", help="apply retention settings; dry run unless --apply")
    s.add_argument("table", nargs="?", help="default: every table")
    s.add_argument("--apply", action="store_true")
    s.set_defaults(func=cmd_table_vacuum)

    s = sub.add_parser("erase", help="remove one customer from every table, the raw zone and the online store")
    s.add_argument("customer_id")
    s.add_argument("--requested-on", required=True, type=lambda v: _dates(v)[0],
                   help="date of the erasure request YYYY-MM-DD (recorded in ops.erasures)")
    s.add_argument("--no-purge", action="store_true",
                   help="keep older table versions until the retention policy's vacuum (default: purge now)")
    s.add_argument("--yes", action="store_true", help="confirm; without it nothing is changed")
    s.set_defaults(func=cmd_erase)

    s = sub.add_parser("backfill-check", help="a backfill (one process) vs the same dates run one by one: "
                       "compare every bronze/silver/gold table")
    s.add_argument("--days", type=int, default=30)
    s.add_argument("--customers", type=int, default=150)
    s.add_argument("--work", default="var/backfill-check", help="folder for the sources and the two lakes")
    s.set_defaults(func=cmd_backfill_check)

    s = sub.add_parser("eda", help="exploratory analysis of the gold tables: statistics, plots, HTML report")
    s.add_argument("--date", required=True, type=lambda v: _dates(v)[0], help="as-of date YYYY-MM-DD")
    s.add_argument("--out", help="write here instead of <lake>/reports/eda/date=D")
    s.set_defaults(func=cmd_eda)

    cluster = sub.add_parser("cluster", help="the distributed path on this machine").add_subparsers(
        dest="cluster", required=True)
    s = cluster.add_parser("local-run", help="HDFS minicluster + Spark standalone master/worker on 127.0.0.1; "
                                             "spark-submit the daily jobs to spark:// for N dates")
    s.add_argument("--out", default="var/cluster-run")
    s.add_argument("--customers", type=int, default=400)
    s.add_argument("--days", type=int, default=1)
    s.add_argument("--worker-cores", type=int, default=2)
    s.add_argument("--worker-memory", default="3g")
    s.set_defaults(func=cmd_cluster_local_run)

    s = sub.add_parser("walkthrough", help="run the DAG for a date and photograph Airflow and MLflow (docs)")
    s.add_argument("--out", default="docs/img/walkthrough")
    s.add_argument("--work", default="var/walkthrough")
    s.add_argument("--customers", type=int, default=300)
    s.add_argument("--shots-only", action="store_true", help="reuse --work from a previous run; only photograph")
    s.set_defaults(func=cmd_walkthrough)

    s = sub.add_parser("tasks", help="run summary: per job execution status, duration, rows in/out, quality")
    s.add_argument("--dag-run-id", help="one Airflow DAG run (e.g. manual__2026-01-05T00:00:00+00:00)")
    s.add_argument("--date", type=lambda v: _dates(v)[0], help="one logical date")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(func=cmd_tasks)

    byod = sub.add_parser("byod", help="bring your own data: run a dataset profile on your own churn file") \
        .add_subparsers(dest="byod", required=True)
    s = byod.add_parser("run", help="raw zone, bronze, Deequ checks, silver, gold, models and report for one file")
    s.add_argument("profile", help="the dataset profile (YAML), e.g. conf/base/byod/acme_customers.yaml")
    s.add_argument("--file", required=True, help="the data file (CSV or whitespace-separated text)")
    s.add_argument("--run-date", required=True, type=lambda v: _dates(v)[0], help="logical date of this extract (YYYY-MM-DD)")
    s.add_argument("--out", help="report folder (default var/byod/<profile>/date=D)")
    s.set_defaults(func=cmd_byod_run)
    s = byod.add_parser("check", help="check a profile against a file's header (no Spark, instant)")
    s.add_argument("profile")
    s.add_argument("--file", required=True)
    s.set_defaults(func=cmd_byod_check)
    s = byod.add_parser("init", help="draft a profile from a file (guesses to review; no Spark)")
    s.add_argument("file")
    s.add_argument("--shape", choices=["snapshot", "event_log"], required=True)
    s.add_argument("--id", help="customer id column (default: guessed from names)")
    s.add_argument("--label", help="label column, snapshots (default: guessed)")
    s.add_argument("--timestamp", help="event time column, event logs (default: guessed)")
    s.add_argument("--name", help="profile name (default: from the file name)")
    s.add_argument("--out", help="write the YAML here (default: print it)")
    s.set_defaults(func=cmd_byod_init)
    s = byod.add_parser("example", help="write the guide's example files (a CRM extract and an order log)")
    s.add_argument("--out", default="var/byod/example")
    s.add_argument("--customers", type=int, default=3000)
    s.add_argument("--seed", type=int, default=11)
    s.set_defaults(func=cmd_byod_example)

    s = sub.add_parser("runs", help="the run ledger: recent runs, or one run's reads and writes")
    s.add_argument("--run-id")
    s.add_argument("--limit", type=int, default=20)
    s.set_defaults(func=cmd_runs)

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
    s.add_argument("--scales", default="1,10", type=_numbers(float, "multipliers"),
                   help="comma-separated multipliers of simulator.customers")
    s.add_argument("--days", type=int, default=4)
    s.set_defaults(func=cmd_bench_ingest)

    s = bench.add_parser("validation", help="validation cost against a plain scan of the same table")
    s.add_argument("--scales", default="1,10", type=_numbers(float, "multipliers"),
                   help="comma-separated multipliers of simulator.customers (default 1,10)")
    s.set_defaults(func=cmd_bench_validation)

    s = bench.add_parser("insert", help="a day's insert into an insert-only silver table against its stored history")
    s.add_argument("--history", default="1,30,90", type=COUNTS, help="comma-separated days stored (default 1,30,90)")
    s.add_argument("--rows-per-day", type=int, default=947_000, help="events a day (default 947000: web_events x100)")
    s.set_defaults(func=cmd_bench_insert)

    s = bench.add_parser("entities", help="gold's entity state as of a date: whole history against the monthly checkpoint")
    s.add_argument("--subscriptions", type=int, default=1_000_000, help="subscriptions on the first day (default 1000000)")
    s.add_argument("--ages", default="30,120,365", type=COUNTS, help="comma-separated ages of the lake in days (default 30,120,365)")
    s.set_defaults(func=cmd_bench_entities)

    s = bench.add_parser("train", help="training time per algorithm against the training set's size")
    s.add_argument("--customers", default="1000,10000,100000", type=COUNTS,
                   help="comma-separated customers a date (default 1000,10000,100000)")
    s.add_argument("--dates", type=int, default=10, help="labelled snapshot dates (default 10)")
    s.add_argument("--cv-max-rows", type=int, default=1_000_000,
                   help="cross-validate as training does up to this many training rows (default 1000000)")
    s.add_argument("--cv-parallelism", default=None, type=COUNTS,
                   help="comma-separated candidates fitted at once to compare, e.g. 1,2 "
                        "(default: model.cv_parallelism alone)")
    s.add_argument("--spark-memory", default="6g", help="Spark driver memory (local mode; default 6g)")
    s.set_defaults(func=cmd_bench_train)

    s = bench.add_parser("features", help="as-of-date features: Spark full and incremental vs DuckDB and pandas")
    s.add_argument("--customers", default="10000,100000", type=COUNTS, help="comma-separated customer counts (default 10000,100000)")
    s.add_argument("--history", default="30,365", type=COUNTS, help="comma-separated days of history (default 30,365)")
    s.add_argument("--spark-memory", default="6g", help="Spark driver memory (local mode; default 6g)")
    s.set_defaults(func=cmd_bench_features)
    s = bench.add_parser("gold", help="gold snapshot cost against the age of the lake (rolled state vs full pass)")
    s.add_argument("--dates", required=True, help="comma-separated dates (or FIRST:LAST ranges) the configured lake holds gold activity for")
    s.set_defaults(func=cmd_bench_gold)
    s = bench.add_parser("jvm", help="a Spark JVM's cold start with and without the class archive (make cds)")
    s.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    s.set_defaults(func=cmd_bench_jvm)
    s = bench.add_parser("cpu", help="where a date's time goes: stage times, JVM CPU per thread group, Spark jobs")
    s.add_argument("--days", type=int, default=3, help="simulated dates to run (default 3)")
    s.set_defaults(func=cmd_bench_cpu)
    s = bench.add_parser("online", help="online feature store latency (in-process and HTTP)")
    s.add_argument("--lookups", type=int, default=2000)
    s.set_defaults(func=cmd_bench_online)

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
