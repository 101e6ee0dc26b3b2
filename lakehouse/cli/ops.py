"""The operator's commands: run the pipeline and its stages, inspect and manage the lake (tables,
versions, erasure, runs), the feature store, EDA and bring-your-own-data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lakehouse.cli.common import dates, print_rows, settings_of, spark_session
from lakehouse.errors import LakehouseError
from lakehouse.job import parse_date
from lakehouse.pipeline import DATA_STAGES, HISTORY_STAGES, SOURCES, STAGES


def cmd_config(args) -> int:
    settings = settings_of(args)
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def cmd_check(args) -> int:
    from lakehouse.storage import storage_for

    settings = settings_of(args)
    storage_for(settings).check()
    print(f"ok: env={settings.env} lake={settings.lake_uri}")
    return 0


def cmd_ingest(args) -> int:
    from lakehouse.ingest.stage import ingest_source

    settings = settings_of(args)
    with spark_session(settings, f"ingest_{args.source}") as spark:
        for day in args.dates:
            result = ingest_source(spark, settings, args.source, day)
            print(json.dumps(result.as_dict(), indent=2, default=str))
    return 0


def cmd_silver(args) -> int:
    from lakehouse.silver.stage import validate_and_report

    settings = settings_of(args)
    with spark_session(settings, "silver") as spark:
        for day in args.dates:
            result = validate_and_report(spark, settings, day, tables=args.tables)
            print(json.dumps(result.as_dict(), indent=2, default=str))
    return 0


def cmd_run(args) -> int:
    from lakehouse.pipeline import run_range

    settings = settings_of(args)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    with spark_session(settings, "run") as spark:
        timings = run_range(spark, settings, args.dates, stages)
    for t in timings:
        print(json.dumps(t))
    return 0


def cmd_backfill(args) -> int:
    from lakehouse.pipeline import check_range, load_history

    settings = settings_of(args)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    try:
        check_range(args.first, args.last)  # refused before a Spark session starts
    except ValueError as exc:
        raise LakehouseError(str(exc)) from None
    with spark_session(settings, "backfill") as spark:
        result = load_history(spark, settings, args.first, args.last, stages)
    print(json.dumps(result, indent=2))
    return 0


def cmd_features_list(args) -> int:
    from lakehouse.featurestore.registry import load_registry

    reg = load_registry()
    rows = [{"feature": f"{v.name}:{f.name}", "version": f.version, "dtype": f.dtype, "ttl_days": v.ttl_days,
             "tags": ",".join(f.tags), "description": f.description} for v, f in reg.all_features()]
    print_rows(rows)
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

    settings = settings_of(args)
    store = OnlineStore(settings)
    t = time.perf_counter()
    rows = store.get(args.ids, args.features)
    ms = (time.perf_counter() - t) * 1000
    print(json.dumps(rows, indent=2, default=str))
    print(f"({len(rows)} customer(s) in {ms:.2f} ms from {store.path})", file=sys.stderr)
    return 0


def cmd_features_serve(args) -> int:
    from lakehouse.featurestore.server import serve

    serve(settings_of(args), args.host, args.port)
    return 0


def cmd_sql(args) -> int:
    from lakehouse import catalog

    settings = settings_of(args)
    with spark_session(settings, "sql") as spark:
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

    settings = settings_of(args)
    with spark_session(settings, "table-history") as spark:
        print_rows(history(spark, settings, args.table, args.limit))
    return 0


def cmd_table_diff(args) -> int:
    from lakehouse.versioning import diff

    settings = settings_of(args)
    with spark_session(settings, "table-diff") as spark:
        print(json.dumps(diff(spark, settings, args.table, args.v1, args.v2, args.key), indent=2))
    return 0


def cmd_table_restore(args) -> int:
    from lakehouse.versioning import restore

    settings = settings_of(args)
    with spark_session(settings, "table-restore") as spark:
        print(json.dumps(restore(spark, settings, args.table, args.version), indent=2))
    return 0


def cmd_table_vacuum(args) -> int:
    from lakehouse.versioning import lake_tables, vacuum

    settings = settings_of(args)
    with spark_session(settings, "table-vacuum") as spark:
        pins: dict[str, list[dict]] = {}
        if not args.include_model_versions:
            from lakehouse.ml.lineage import erasure_records, model_pins

            pins = model_pins(settings, erasures=erasure_records(spark, settings))
        names = [args.table] if args.table else [f"{layer}.{n}" for layer, n in lake_tables(spark, settings)]
        for name in names:
            print(json.dumps(vacuum(spark, settings, name, dry_run=not args.apply, pins=pins.get(name))))
    return 0


def cmd_table_optimize(args) -> int:
    from lakehouse.maintenance import compact_lake

    settings = settings_of(args)
    with spark_session(settings, "table-optimize") as spark:
        result = compact_lake(spark, settings, args.run_date, f"optimize-{args.run_date}",
                              [args.table] if args.table else None, dry_run=not args.apply,
                              min_files=args.min_files)
    for r in result["results"]:
        print(json.dumps(r))
    verb = "compacted" if args.apply else "to compact (dry run; --apply to compact)"
    print(f"{sum(r['partitions_to_compact'] > 0 for r in result['results'])} of {result['tables']} table(s) {verb}; "
          f"files {result['files_before']} -> {result['files_after']}")
    return 0


def cmd_erase(args) -> int:
    from lakehouse.erasure import erase_customer

    settings = settings_of(args)
    if not args.yes:
        raise LakehouseError("erase rewrites tables and raw files and (without --no-purge) destroys older "
                             "table versions; add --yes to confirm")
    with spark_session(settings, "erase") as spark:
        result = erase_customer(spark, settings, args.customer_id, args.requested_on, purge=not args.no_purge)
    from lakehouse.ml.lineage import note_erasure

    out = result.as_dict()
    # registered models whose training sets held the customer: their lineage records the erasure, and
    # `lakehouse model training-set` rebuilds them from the erased versions, minus these rows
    out["models"] = note_erasure(settings, out)
    print(json.dumps(out, indent=2))
    return 0


def cmd_runs(args) -> int:
    from lakehouse.versioning import ledger

    settings = settings_of(args)
    with spark_session(settings, "runs") as spark:
        df = ledger(spark, settings, args.run_id).orderBy("recorded_at", "table")
        if not args.run_id:
            from pyspark.sql import functions as F

            df = (df.groupBy("run_id", "job", "run_date", "status").agg(
                F.round(F.max("seconds"), 1).alias("seconds"),
                F.sum(F.when(F.col("role") == "write", 1).otherwise(0)).alias("tables_written"),
                F.sum(F.when(F.col("role") == "write", F.col("rows")).otherwise(0)).alias("rows_written"),
                F.sum(F.when(F.col("role") == "read", 1).otherwise(0)).alias("tables_read"),
                F.max("recorded_at").alias("recorded_at")).orderBy(F.col("recorded_at").desc()).limit(args.limit))
        print_rows([r.asDict() for r in df.collect()])
    return 0


def cmd_tasks(args) -> int:
    from lakehouse import runlog

    settings = settings_of(args)
    with spark_session(settings, "tasks") as spark:
        df = runlog.summary(spark, settings, args.dag_run_id, args.date.isoformat() if args.date else None)
        rows = [r.asDict() for r in df.select("recorded_at", "run_date", "job", "status", "seconds", "rows_in",
                                              "rows_out", "quality", "try_number", "dag_run_id", "error")
                .collect()][-args.limit:]
    for r in rows:
        r["error"] = (r["error"] or "")[:120]
    print_rows(rows)
    return 0


def cmd_eda(args) -> int:
    from lakehouse.eda import run_eda

    settings = settings_of(args)
    with spark_session(settings, "eda") as spark:
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
    from lakehouse.byod.profile import check_header, check_sample, load_profile, read_header

    profile = load_profile(args.profile)
    header = read_header(Path(args.file), profile)
    undeclared = check_header(profile, header, args.file)
    notes = check_sample(Path(args.file), profile, header, args.rows)
    print(f"ok: profile '{profile.name}' ({profile.shape}) fits {args.file}: {len(header)} columns, the first "
          f"{args.rows} lines read" + (f"; not in the profile (ignored): {', '.join(undeclared)}" if undeclared else ""))
    for note in notes:
        print(f"  note: {note}")
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


def cmd_byod_score(args) -> int:
    from lakehouse.byod.profile import load_profile
    from lakehouse.byod.scoring import score_file

    settings = settings_of(args)
    profile = load_profile(args.profile)
    with spark_session(settings, f"byod-score-{profile.name}") as spark:
        result = score_file(spark, settings, profile, Path(args.file), args.run_date, args.version)
    print(json.dumps(result, indent=2))
    return 0


def cmd_byod_run(args) -> int:
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.byod.profile import load_profile

    settings = settings_of(args)
    profile = load_profile(args.profile)
    with spark_session(settings, f"byod-{profile.name}") as spark:
        result = run_profile(spark, settings, profile, Path(args.file), args.run_date,
                             Path(args.out) if args.out else None, replace=args.replace)
    summary = {"profile": result.profile, "rows": result.rows, "split": result.split["rows"], "best": result.best,
               "roc_auc": {a: round(m["roc_auc"], 4) for a, m in result.metrics.items()},
               "registered_version": result.registered, "seconds": result.seconds,
               "report": str(Path(result.out_dir) / "report.html")}
    print(json.dumps(summary, indent=2))
    return 0


def cmd_lake_ls(args) -> int:
    from lakehouse.browse import format_partitions, raw_partitions
    from lakehouse.storage import storage_for

    settings = settings_of(args)
    parts = list(raw_partitions(storage_for(settings), args.source, args.type))
    print(format_partitions(parts))
    return 0


def cmd_lake_raw(args) -> int:
    from lakehouse.browse import raw_sample

    print(raw_sample(settings_of(args), args.source, args.type, args.date, args.lines))
    return 0


def cmd_lake_table(args) -> int:
    from lakehouse.browse import table_sample

    settings = settings_of(args)
    with spark_session(settings, "browse") as spark:
        print(table_sample(spark, settings, args.layer, args.name, args.date, args.limit))
    return 0


def cmd_model_training_set(args) -> int:
    from lakehouse.ml import lineage, tracking

    settings = settings_of(args)
    tracking.setup(settings)
    client = tracking.client(settings)
    mv = lineage.model_version(client, args.model, settings.model.name)
    with spark_session(settings, "model-training-set") as spark:
        result = lineage.rebuild_training_set(spark, settings, client, mv, Path(args.out) if args.out else None)
    got = result.rebuilt
    where = ", ".join(f"{t}@v{v}" for t, v in sorted(result.table_versions.items()))
    erased = ""
    if result.removed is not None:
        n = result.removed["customers"]
        erased = (f" without {n} erased customer{'' if n == 1 else 's'}, {result.removed['rows']} rows "
                  f"({len(result.erasures)} erasure(s) since training)")
    if result.equal is None:
        verdict = "recorded now" if result.recorded_now else "not checked"
    elif result.equal:
        verdict = f"equal to the recorded set{erased}"
    else:
        verdict = (f"NOT EQUAL to the recorded set{erased} ({result.expected['rows']} rows, checksum "
                   f"{result.expected['checksum']})")
    print(f"{result.model} v{result.version}: training set rebuilt from {where} over {len(result.dates)} snapshot "
          f"dates: {got['rows']} rows, checksum {got['checksum']}: {verdict}")
    for note in result.notes:
        print(f"  note: {note}")
    if result.written_to:
        print(f"  written to {result.written_to} (Parquet)")
    return 1 if result.equal is False else 0


def cmd_mlflow(args) -> int:
    """The MLflow UI over this environment's tracking store, on 127.0.0.1 (until interrupted)."""
    import os
    import shutil

    from lakehouse.ml import tracking

    settings = settings_of(args)
    uri = tracking.tracking_uri(settings)
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if mlflow is None:
        raise LakehouseError("the mlflow command is not installed in this environment (make setup installs it)")
    cmd = [mlflow, "ui", "--backend-store-uri", uri, "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI on http://{args.host}:{args.port} over {uri} (Ctrl-C to stop)", flush=True)
    os.execv(mlflow, cmd)
    return 0  # not reached: the process is now MLflow's


def add_commands(sub) -> None:
    """The operator's subcommands on ``sub`` (the parser's subparsers)."""
    s = sub.add_parser("config", help="print the merged, validated configuration")
    s.set_defaults(func=cmd_config)

    s = sub.add_parser("check", help="validate configuration and check that the lake root is usable")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("ingest", help="ingest one source for a date or a date range (one Spark session)")
    s.add_argument("source", choices=SOURCES)
    s.add_argument("--run-date", dest="dates", required=True, type=dates,
                   help="YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD (inclusive)")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("silver", help="validate bronze with PyDeequ into silver for a date or range; write the report")
    s.add_argument("--run-date", dest="dates", required=True, type=dates,
                   help="YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD (inclusive)")
    s.add_argument("--tables", nargs="*", help="only these silver tables")
    s.set_defaults(func=cmd_silver)

    s = sub.add_parser("run", help="run the daily pipeline for a date or range in one Spark session")
    s.add_argument("--run-date", dest="dates", required=True, type=dates,
                   help="YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD (inclusive)")
    s.add_argument("--stages", default=",".join(DATA_STAGES),
                   help=f"comma-separated, from: {', '.join(STAGES)} (run in that order)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("backfill", help="load a range of dates as history in one pass per stage "
                       "(equal to daily runs of the range; docs/history-load.md)")
    s.add_argument("--from", dest="first", required=True, type=parse_date, help="first date, YYYY-MM-DD")
    s.add_argument("--to", dest="last", required=True, type=parse_date, help="last date, YYYY-MM-DD (inclusive)")
    s.add_argument("--stages", default=",".join(HISTORY_STAGES), help=f"comma-separated, from: {', '.join(HISTORY_STAGES)}")
    s.set_defaults(func=cmd_backfill)

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
    s = table.add_parser("vacuum", help="apply retention settings, keeping the table versions registered models "
                         "were trained on; dry run (with what models pin and the bytes kept) unless --apply")
    s.add_argument("table", nargs="?", help="default: every table")
    s.add_argument("--apply", action="store_true")
    s.add_argument("--include-model-versions", action="store_true",
                   help="also delete files only registered models' training sets need (they can no longer be rebuilt)")
    s.set_defaults(func=cmd_table_vacuum)

    s = table.add_parser("optimize", help="compact small files: every partition (or unpartitioned table) "
                         "holding maintenance.compact_min_files files or more becomes one file; rows unchanged; "
                         "dry run unless --apply")
    s.add_argument("table", nargs="?", help="<layer>.<name> (default: every table)")
    s.add_argument("--apply", action="store_true")
    s.add_argument("--min-files", type=int, help="override maintenance.compact_min_files")
    s.add_argument("--run-date", type=parse_date, required=True,
                   help="the date recorded in the compaction commits (YYYY-MM-DD)")
    s.set_defaults(func=cmd_table_optimize)

    s = sub.add_parser("erase", help="remove one customer from every table, the raw zone and the online store")
    s.add_argument("customer_id")
    s.add_argument("--requested-on", required=True, type=lambda v: dates(v)[0],
                   help="date of the erasure request YYYY-MM-DD (recorded in ops.erasures)")
    s.add_argument("--no-purge", action="store_true",
                   help="keep older table versions until the retention policy's vacuum (default: purge now)")
    s.add_argument("--yes", action="store_true", help="confirm; without it nothing is changed")
    s.set_defaults(func=cmd_erase)

    s = sub.add_parser("eda", help="exploratory analysis of the gold tables: statistics, plots, HTML report")
    s.add_argument("--date", required=True, type=lambda v: dates(v)[0], help="as-of date YYYY-MM-DD")
    s.add_argument("--out", help="write here instead of <lake>/reports/eda/date=D")
    s.set_defaults(func=cmd_eda)

    s = sub.add_parser("tasks", help="run summary: per job execution status, duration, rows in/out, quality")
    s.add_argument("--dag-run-id", help="one Airflow DAG run (e.g. manual__2026-01-05T00:00:00+00:00)")
    s.add_argument("--date", type=lambda v: dates(v)[0], help="one logical date")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(func=cmd_tasks)

    byod = sub.add_parser("byod", help="bring your own data: run a dataset profile on your own churn file") \
        .add_subparsers(dest="byod", required=True)
    s = byod.add_parser("run", help="raw zone, bronze, Deequ checks, silver, gold, models and report for one file")
    s.add_argument("profile", help="the dataset profile (YAML), e.g. conf/base/byod/acme_customers.yaml")
    s.add_argument("--file", required=True, help="the data file (CSV or whitespace-separated text)")
    s.add_argument("--run-date", required=True, type=lambda v: dates(v)[0], help="logical date of this extract (YYYY-MM-DD)")
    s.add_argument("--out", help="report folder (default var/byod/<profile>/date=D)")
    s.add_argument("--replace", action="store_true",
                   help="if the file's columns differ from those the profile loaded before, drop the profile's "
                        "tables and load every layer from this file (default: refuse)")
    s.set_defaults(func=cmd_byod_run)
    s = byod.add_parser("score", help="score a new file of the profile's shape with its registered model "
                        "(same checks) into gold.byod_<profile>_scores")
    s.add_argument("profile")
    s.add_argument("--file", required=True)
    s.add_argument("--run-date", required=True, type=lambda v: dates(v)[0], help="logical date of the file (YYYY-MM-DD)")
    s.add_argument("--version", help="registered model version (default: the latest)")
    s.set_defaults(func=cmd_byod_score)
    s = byod.add_parser("check", help="check a profile against a file's header and first lines (no Spark)")
    s.add_argument("profile")
    s.add_argument("--file", required=True)
    s.add_argument("--rows", type=int, default=2000, help="data lines to read and check (default 2000)")
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

    model = sub.add_parser("model", help="registered models: lineage").add_subparsers(dest="model_cmd", required=True)
    s = model.add_parser("training-set", help="rebuild a registered model's training set from the recorded table "
                                              "versions and check it against the recorded checksum")
    s.add_argument("model", help="NAME@ALIAS, NAME/VERSION, @ALIAS, or NAME (its champion); e.g. churn-model@champion")
    s.add_argument("--out", help="also write the rebuilt rows here (a Parquet folder)")
    s.set_defaults(func=cmd_model_training_set)

    s = sub.add_parser("mlflow", help="the MLflow UI (runs, registered models, the champion) on 127.0.0.1")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    s.set_defaults(func=cmd_mlflow)

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
