"""The developer's commands (``lakehouse simulate|bench|demo|walkthrough|cluster|backfill-check``): the
simulated sources, the benchmarks, the demo and the checks, added to the ``lakehouse`` command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lakehouse.cli.common import COUNTS, dates, numbers, settings_of
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError


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

    settings = settings_of(args)
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

    settings = settings_of(args)
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


def cmd_backfill_check(args) -> int:
    from lakehouse.tools.backfill_check import backfill_check

    result = backfill_check(Path(args.work), args.days, args.customers, args.env)
    print(json.dumps({k: v for k, v in result.items() if k != "tables"}, indent=2))
    return 0 if result["identical"] else 1


def cmd_bench_ingest(args) -> int:
    from lakehouse.tools.bench import bench_ingest

    settings = settings_of(args)
    scales = args.scales
    root = settings.path(".")
    results = bench_ingest(settings, scales, args.days, root / "bench-results" / "ingest.json",
                           root / "docs" / "benchmarks-ingest.md")
    print(f"{len(results)} measurements written to bench-results/ingest.json and docs/benchmarks-ingest.md")
    return 0


def cmd_bench_cpu(args) -> int:
    from lakehouse.tools.bench import bench_cpu

    settings = settings_of(args)
    root = settings.path(".")
    r = bench_cpu(settings, args.days, root / "bench-results" / "cpu.json", root / "docs" / "benchmarks-cpu.md")
    print(f"{r['days']} dates in {r['wall_s']} s: {r['spark_jobs']} Spark jobs, JVM CPU {r['jvm_cpu_s']} s, "
          f"Python CPU {r['python_cpu_s']} s; bench-results/cpu.json and docs/benchmarks-cpu.md")
    return 0


def cmd_bench_validation(args) -> int:
    from lakehouse.tools.bench import bench_validation

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_validation(settings, args.scales,
                               root / "bench-results" / "validation.json", root / "docs" / "benchmarks-validation.md")
    print(f"{len(results)} measurements written to bench-results/validation.json and docs/benchmarks-validation.md")
    return 0


def cmd_bench_insert(args) -> int:
    from lakehouse.tools.bench import bench_insert

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_insert(settings, args.history, root / "bench-results" / "insert.json",
                           root / "docs" / "benchmarks-insert.md", rows_per_day=args.rows_per_day)
    print(f"{len(results)} measurements written to bench-results/insert.json and docs/benchmarks-insert.md")
    return 0


def cmd_bench_entities(args) -> int:
    from lakehouse.tools.bench import bench_entities

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_entities(settings, args.subscriptions, args.ages,
                             root / "bench-results" / "entities.json", root / "docs" / "benchmarks-entities.md")
    print(f"{len(results)} measurements written to bench-results/entities.json and docs/benchmarks-entities.md")
    return 0


def cmd_bench_train(args) -> int:
    from lakehouse.tools.bench_train import bench_train

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_train(settings, args.customers, args.dates,
                          root / "bench-results" / "train.json", root / "docs" / "benchmarks-train.md",
                          cv_max_rows=args.cv_max_rows, spark_memory=args.spark_memory,
                          cv_parallelism=args.cv_parallelism)
    print(f"{len(results)} measurements written to bench-results/train.json and docs/benchmarks-train.md")
    return 0


def cmd_bench_online(args) -> int:
    from lakehouse.tools.bench import bench_online

    settings = settings_of(args)
    root = settings.path(".")
    result = bench_online(settings, args.lookups, root / "bench-results" / "online.json",
                          root / "docs" / "benchmarks-online.md")
    print(json.dumps(result, indent=2))
    return 0


def cmd_bench_jvm(args) -> int:
    from lakehouse.tools.bench_jvm import bench_startup

    root = settings_of(args).path(".")
    results = bench_startup(args.runs, root / "bench-results" / "jvm.json", root / "docs" / "benchmarks-jvm.md")
    print(json.dumps(results, indent=2))
    return 0


def cmd_bench_gold(args) -> int:
    from lakehouse.tools.bench import bench_gold

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_gold(settings, [d for part in args.dates.split(",") for d in dates(part)],
                         root / "bench-results" / "gold.json", root / "docs" / "benchmarks-gold.md")
    print(f"{len(results)} measurements written to bench-results/gold.json and docs/benchmarks-gold.md")
    return 0


def cmd_bench_history(args) -> int:
    from lakehouse.tools.bench_history import bench_history, write_results

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_history(settings, args.customers, args.days, args.daily_days, Path(args.work))
    write_results(results, root / "bench-results" / "history.json", root / "docs" / "history-load.md")
    for r in results:
        print(f"{r['customers']} customers x {r['history_dates']} dates: history load {r['load_seconds']['total']}s "
              f"{r['load_seconds']}, peak {r['load_peak_mib']} MiB; daily run after it {r['daily_mean_seconds']}s; "
              f"day by day (extrapolated) {r['day_by_day_extrapolated_seconds']}s")
    print("written to bench-results/history.json and docs/history-load.md")
    return 0


def cmd_bench_pipeline(args) -> int:
    from lakehouse.tools.bench_pipeline import bench_pipeline, write_results

    settings = settings_of(args)
    root = settings.path(".")
    out_md = root / "docs" / "benchmarks-pipeline.md"
    out_json = out_md.with_suffix(".json")  # in git: a scale run alone merges with the others on record
    overrides = {"quality": {"gate_min_rows": args.gate_min_rows}} if args.gate_min_rows is not None else None
    results = bench_pipeline(settings, args.customers, args.days, args.daily_days, Path(args.work),
                             on_scale=lambda done: write_results(done, out_json, out_md), overrides=overrides)
    for r in results:
        print(f"{r['customers']} customers x {r['days']} days: {r['total_seconds']}s in all (history load "
              f"{r['history_seconds']}s, daily runs {r['daily_seconds']}, train "
              f"{r['stages']['model:train']['seconds']}s, score {r['stages']['model:score']['seconds']}s); "
              f"peak {r['peak_mib']} MiB; files per partition {r['files_per_partition_dated']} "
              f"(worst table {r['files_per_partition_max']})")
    print(f"written to {out_json.relative_to(root)} and {out_md.relative_to(root)}")
    return 0


def cmd_bench_byod(args) -> int:
    from lakehouse.tools.bench_byod import bench_byod, write_results

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_byod(settings, args.customers, Path(args.work))
    write_results(results, root / "bench-results" / "byod.json", root / "docs" / "byod.md", args.customers)
    for r in results:
        print(f"{r['file']}: registered {r['registered']} ROC AUC {r['registered_auc']} (Brier {r['registered_brier']}, "
              f"prior {r['prior_brier']}); " + ", ".join(
                  f"{m['algorithm']} tuned {m['tuned_auc']} vs plain {m['plain_auc']}" for m in r["models"])
              + f"; {r['seconds']}s")
    # the targets are for the default settings; the balanced-weights run is there to compare calibration
    default = [r for r in results if r["class_weight"] == "none"]
    missed = [(r["file"], m["algorithm"]) for r in default for m in r["models"] if not m["tuned_ok"]]
    missed += [(r["file"], "registered") for r in default if not r["registered_ok"]]
    print("targets met (default settings)" if not missed else f"targets missed: {missed}")
    print("written to bench-results/byod.json and docs/byod.md")
    return 0


def cmd_bench_features(args) -> int:
    from lakehouse.tools.bench_features import bench_features

    settings = settings_of(args)
    root = settings.path(".")
    results = bench_features(args.customers, args.history,
                             root / "bench-results" / "features.json", root / "docs" / "benchmarks-features.md",
                             spark_memory=args.spark_memory)
    print(f"{len(results)} scale(s) measured, outputs equal across engines; bench-results/features.json, "
          "docs/benchmarks-features.md")
    return 0


def cmd_cluster_local_run(args) -> int:
    from lakehouse.tools.localcluster import local_run

    result = local_run(Path(args.out), args.customers, args.days, args.env, args.worker_cores, args.worker_memory)
    print(json.dumps({k: v for k, v in result.items() if k != "task_runs"}, indent=2))
    print(result["task_runs"])
    return 0


def cmd_walkthrough(args) -> int:
    from lakehouse.tools.walkthrough import run

    print(json.dumps(run(Path(args.out), Path(args.work), args.customers, args.shots_only), indent=2))
    return 0


def cmd_demo(args) -> int:
    from lakehouse.tools import demo

    settings = settings_of(args)
    return demo.run_demo(settings, days=args.days)


def add_commands(sub) -> None:
    """The developer's subcommands on ``sub`` (the parser's subparsers)."""
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

    s = sub.add_parser("backfill-check", help="a history load (one process) vs the same dates run one by one: "
                       "compare every bronze/silver/gold table")
    s.add_argument("--days", type=int, default=30)
    s.add_argument("--customers", type=int, default=150)
    s.add_argument("--work", default="var/backfill-check", help="folder for the sources and the two lakes")
    s.set_defaults(func=cmd_backfill_check)

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

    bench = sub.add_parser("bench", help="benchmarks (write results; assert nothing)").add_subparsers(
        dest="bench", required=True)
    s = bench.add_parser("ingest", help="ingest time per source per day at several scales")
    s.add_argument("--scales", default="1,10", type=numbers(float, "multipliers"),
                   help="comma-separated multipliers of simulator.customers")
    s.add_argument("--days", type=int, default=4)
    s.set_defaults(func=cmd_bench_ingest)

    s = bench.add_parser("validation", help="validation cost against a plain scan of the same table")
    s.add_argument("--scales", default="1,10", type=numbers(float, "multipliers"),
                   help="comma-separated multipliers of simulator.customers (default 1,10)")
    s.set_defaults(func=cmd_bench_validation)

    s = bench.add_parser("insert", help="a day's insert into an insert-only silver table against its stored history")
    s.add_argument("--history", default="1,30,90", type=COUNTS, help="comma-separated days stored (default 1,30,90)")
    s.add_argument("--rows-per-day", type=int, default=947_000, help="events a day (default 947000: web_events x100)")
    s.set_defaults(func=cmd_bench_insert)

    s = bench.add_parser("entities", help="gold's entity state as of a date: whole history against the monthly checkpoint")
    s.add_argument("--subscriptions", type=int, default=1_000_000, help="subscriptions on the first day (default 1000000)")
    s.add_argument("--ages", default="30,120,365", type=COUNTS,
                   help="comma-separated ages of the lake in days (default 30,120,365)")
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
    s.add_argument("--customers", default="10000,100000", type=COUNTS,
                   help="comma-separated customer counts (default 10000,100000)")
    s.add_argument("--history", default="30,365", type=COUNTS, help="comma-separated days of history (default 30,365)")
    s.add_argument("--spark-memory", default="6g", help="Spark driver memory (local mode; default 6g)")
    s.set_defaults(func=cmd_bench_features)
    s = bench.add_parser("history", help="the history load against the day-by-day path, per stage, at several scales")
    s.add_argument("--customers", default="2000,20000", type=COUNTS, help="comma-separated (default 2000,20000)")
    s.add_argument("--days", type=int, default=90, help="simulated dates (default 90)")
    s.add_argument("--daily-days", type=int, default=2, help="of which the last run day by day (default 2)")
    s.add_argument("--work", default="var/bench-history", help="folder for the sources and lakes")
    s.set_defaults(func=cmd_bench_history)
    s = bench.add_parser("pipeline", help="the whole pipeline end to end per stage (history load, daily runs, "
                         "training, scoring) at several scales: time, rows, memory, files, commits")
    s.add_argument("--customers", default="2000,20000,100000", type=COUNTS,
                   help="comma-separated (default 2000,20000,100000)")
    s.add_argument("--days", type=int, default=90, help="simulated dates (default 90)")
    s.add_argument("--daily-days", type=int, default=3, help="of which the last run day by day (default 3)")
    s.add_argument("--gate-min-rows", type=int, default=None,
                   help="quality.gate_min_rows for the run (the simulator's faults trip rate gates on small "
                        "early days at large scales; docs/history-load.md)")
    s.add_argument("--work", default="var/bench-pipeline", help="folder for the sources, lakes and MLflow stores")
    s.set_defaults(func=cmd_bench_pipeline)
    s = bench.add_parser("byod", help="bring-your-own-data models against their plain baselines, on generated "
                         "files of both shapes")
    s.add_argument("--customers", type=int, default=4000, help="customers per generated file (default 4000)")
    s.add_argument("--work", default="var/bench-byod", help="folder for the files, lake and MLflow store")
    s.set_defaults(func=cmd_bench_byod)
    s = bench.add_parser("gold", help="gold snapshot cost against the age of the lake (rolled state vs full pass)")
    s.add_argument("--dates", required=True,
                   help="comma-separated dates (or FIRST:LAST ranges) the configured lake holds gold activity for")
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
