"""Benchmarks: measure, write results, assert nothing (targets are read by people, not tests).

``lakehouse bench ingest --scales 1,10 --days 4`` generates the simulated sources at each scale
(customers = simulator.customers x scale), ingests every source for each date in one Spark session,
and writes per-source, per-day timings to ``bench-results/ingest.json`` and a Markdown table to
``docs/benchmarks-ingest.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from lakehouse import tables
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline import SOURCES

log = logging.getLogger(__name__)


def machine() -> str:
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = f", {int(fh.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def replace_block(doc: Path, start: str, end: str, body: str) -> None:
    """Put ``body`` between the ``start`` and ``end`` markers of ``doc`` (appended with them if absent)."""
    text = doc.read_text() if doc.exists() else ""
    block = f"{start}\n{body}\n{end}"
    if start in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text += f"\n{block}\n"
    doc.write_text(text)


def _save_json(path: Path, results: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))


def repeat_timed(fn, repeats: int, before=None) -> dict:
    """Best and median wall seconds of ``repeats`` calls of ``fn`` after one warm-up call; ``before``, if
    given, runs untimed ahead of every call (to reset what ``fn`` changes)."""
    times = []
    for _ in range(repeats + 1):
        if before:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times = times[1:]  # the first warms up
    return {"best_s": round(min(times), 3), "median_s": round(sorted(times)[len(times) // 2], 3)}


def _lake_settings(settings: Settings, root: Path, api_url: str) -> Settings:
    """``settings`` with the lake, logs and source folders under ``root`` (sources in root/sources)."""
    src = root / "sources"
    return load_settings(settings.env, overrides={
        "lake": {"root": str(root / "lake")}, "logs_dir": str(root / "logs"),
        "sources": {"crm": {"url": f"jdbc:sqlite:{src / 'crm' / 'crm.db'}"},
                    "billing": {"inbox": str(src / "billing" / "inbox")},
                    "web": {"inbox": str(src / "web" / "logs")},
                    "support_api": {"base_url": api_url}},
        "feature_store": {"online_path": str(root / "online" / "features.sqlite")}})


def bench_ingest(settings: Settings, scales: list[float], days: int, out_json: Path, out_md: Path) -> list[dict]:
    from lakehouse.ingest.stage import ingest_source
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session

    results = []
    work = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    token = os.environ.setdefault(settings.simulator.api.token_env, "bench-token")
    spark = None
    try:
        for scale in scales:
            root = work / f"x{scale:g}"
            sim = settings.simulator.model_copy(update={"customers": int(settings.simulator.customers * scale),
                                                        "days": days})
            t0 = time.perf_counter()
            summary = generate_sources(sim, root / "sources")
            gen_s = time.perf_counter() - t0
            with ApiServer(root / "sources" / "support", token, rate_limit_per_s=10000) as api:
                run = _lake_settings(settings, root, api.url)
                if spark is None:
                    spark = build_session(run, "bench")
                for i in range(days):
                    day = sim.start_date + dt.timedelta(days=i)
                    for source in SOURCES:
                        t = time.perf_counter()
                        r = ingest_source(spark, run, source, day)
                        results.append({
                            "scale": scale, "customers": sim.customers, "date": str(day), "source": source,
                            "seconds": round(time.perf_counter() - t, 2),
                            "rows": sum(x.rows_fetched for x in r.types), "bytes": sum(x.bytes for x in r.types),
                            "generation_s": round(gen_s, 1), "web_events_total": summary["web_events"]})
                        log.info("bench x%g %s %s: %.2fs", scale, day, source, results[-1]["seconds"])
    finally:
        if spark is not None:
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    _save_json(out_json, results)
    out_md.write_text(render_markdown(results, days))
    return results


def render_markdown(results: list[dict], days: int) -> str:
    lines = ["# Ingestion benchmark", "",
             f"Machine: {machine()}. Spark local, one session for the whole run; each cell is the wall time of "
             "one `ingest_source` call (fetch with retries, raw zone write, bronze parse and Delta commit).",
             f"Sources generated with `simulator.days = {days}` (so the 30 % of customers who arrive during the "
             "simulation arrive within these days, and the price rise falls on day "
             f"{days // 2 + 1}). Day 1 carries the CRM's full go-live snapshot; later days carry that day's changes.",
             "",
             "| scale | customers | date | source | seconds | records | bytes | records/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0
        lines.append(f"| x{r['scale']:g} | {r['customers']} | {r['date']} | {r['source']} | {r['seconds']:.2f} | "
                     f"{r['rows']} | {r['bytes']} | {rate:.0f} |")
    lines += ["", "Per source, mean seconds per day over days 2+:", "", "| scale | source | mean s/day | mean records/day |",
              "| --- | --- | --- | --- |"]
    for scale in sorted({r["scale"] for r in results}):
        for source in SOURCES:
            rows = [r for r in results if r["scale"] == scale and r["source"] == source][1:]
            if rows:
                lines.append(f"| x{scale:g} | {source} | {sum(r['seconds'] for r in rows) / len(rows):.2f} | "
                             f"{sum(r['rows'] for r in rows) / len(rows):.0f} |")
    return "\n".join(lines) + "\n"


JOB_STEP = "validation as the silver job runs it (compiled from quality.compile_min_mb)"
# the two ways Spark SQL can run a query: interpreted (conf/local, conf/test) and compiled (Spark's default)
SQL_MODES = {"interpreted": {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"},
             "code generation": {"spark.sql.codegen.wholeStage": "true", "spark.sql.codegen.factoryMode": "FALLBACK"}}


def bench_validation(settings: Settings, scales: list[float], out_json: Path, out_md: Path,
                     table: str = "web_events", repeats: int = 3, spark=None) -> list[dict]:
    """Validation cost of one table-date against a plain scan of the same bronze rows, and against a
    load of them without checks. In ``spark`` when given (left running, its SQL settings restored),
    else in a session of its own."""
    from pyspark.sql import functions as F

    from lakehouse import delta_io
    from lakehouse.ingest.stage import ingest_source
    from lakehouse.quality.rules import load_rules
    from lakehouse.silver.stage import compiled_if_large, validate_table
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session, session_conf

    spec = load_rules()[table]
    work = Path(tempfile.mkdtemp(prefix="churn-bench-dq-"))
    results, own = [], spark is None
    try:
        for scale in scales:
            root = work / f"x{scale:g}"
            sim = settings.simulator.model_copy(update={"customers": int(settings.simulator.customers * scale), "days": 2})
            generate_sources(sim, root / "sources")
            src = root / "sources"
            run = load_settings(settings.env, overrides={
                "lake": {"root": str(root / "lake")}, "logs_dir": str(root / "logs"),
                "sources": {"crm": {"url": f"jdbc:sqlite:{src / 'crm' / 'crm.db'}"},
                            "billing": {"inbox": str(src / "billing" / "inbox")},
                            "web": {"inbox": str(src / "web" / "logs")}}})
            if spark is None:
                spark = build_session(run, "bench-validation")
            day = sim.start_date + dt.timedelta(days=1)
            ingest_source(spark, run, spec.source, day)
            bronze = delta_io.read(spark, tables.bronze(spec.bronze).uri(run)).where(
                F.col("_ingest_date") == F.lit(day.isoformat()).cast("date"))
            rows = bronze.count()

            def plain_scan():
                # touch every column, as validation must
                bronze.agg(*[F.max(F.length(c)) for c in bronze.columns if c != "_ingest_date"]).collect()

            def typed_load():
                _noop(_typed_rows(bronze, spec))  # written nowhere, every column computed

            def validation():
                outcome, silver, quarantine, checked = validate_table(spark, run, spec, day, "bench", "bench-key")
                silver.count()
                quarantine.count()
                checked.unpersist()

            def as_the_job_runs_it():
                # the silver job compiles a table-date from quality.compile_min_mb where SQL runs interpreted
                with compiled_if_large(spark, run, bronze, f"bench x{scale:g}"):
                    validation()

            for mode, conf in SQL_MODES.items():
                steps = [("plain scan", plain_scan), (TYPED_LOAD, typed_load),
                         ("validation (Deequ + row rules + dedup)", validation)]
                if mode == "interpreted":
                    steps.append((JOB_STEP, as_the_job_runs_it))
                with session_conf(spark, conf):
                    for name, fn in steps:
                        results.append({"scale": scale, "table": table, "rows": rows, "mode": mode, "step": name,
                                        **repeat_timed(fn, repeats)})
                        log.info("bench validation x%g %s %s: %s", scale, mode, name, results[-1])
                    # a warm-up, then the median of each step over the repeats
                    runs = [_validation_phases(spark, run, spec, day, bronze) for _ in range(repeats + 1)][1:]
                results.append({"scale": scale, "table": table, "rows": rows, "mode": mode, "step": "phases",
                                "phases": {k: round(sorted(r[k] for r in runs)[len(runs) // 2], 3) for k in runs[0]}})
            with session_conf(spark, SQL_MODES["code generation"]):
                for step, fn, restore in _written_steps(spark, run, spec, sim.start_date, day, root):
                    results.append({"scale": scale, "table": table, "rows": rows, "mode": "code generation",
                                    "step": step, **repeat_timed(fn, repeats, before=restore)})
                    log.info("bench validation x%g written: %s", scale, results[-1])
    finally:
        if own and spark is not None:
            from lakehouse.quality.runtime import shutdown_deequ

            shutdown_deequ(spark)
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    _save_json(out_json, results)
    lines = ["# Validation benchmark", "",
             f"Machine: {machine()}. One table-date of `{table}` (bronze partition of the second simulated day), "
             f"Spark local, warm session; best and median of {repeats} runs after a warm-up.",
             "Validation = standardize + type + every row rule + one Deequ VerificationSuite (all constraints, "
             "uniqueness, freshness, anomaly check with its metrics repository) + counts + dedup + building the "
             "silver and quarantine frames (counted), without the Delta writes.", "",
             "Each scale is measured twice in the same session: with Spark SQL interpreted (the local and test "
             "overlays' setting) and with code generation (Spark's default, the cluster overlay's). (The silver job "
             "switches a table-date of at least `quality.compile_min_mb` to code generation under those overlays too; "
             "this benchmark calls `validate_table` itself, so each mode is measured as set; the row "
             "'as the silver job runs it' wraps it as the job does, and its ratio is to the interpreted scan, what "
             "a scan costs under those overlays: below the limit it is the interpreted row again.)", "",
             "| scale | rows | Spark SQL | step | best s | median s | ratio to plain scan (median) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for scale in scales:
        for mode in SQL_MODES:
            part = [r for r in results if r["scale"] == scale and r["mode"] == mode and r["step"] != "phases"]
            base = next(r["median_s"] for r in part if r["step"] == "plain scan")
            for r in part:
                lines.append(f"| x{scale:g} | {r['rows']} | {mode} | {r['step']} | {r['best_s']} | {r['median_s']} | "
                             f"{r['median_s'] / base:.1f}x |")
    lines += ["", "## Validation on top of a load without checks", "",
              f"*{TYPED_LOAD}*: what a load into silver computes with no check at all (every declared column "
              "standardized and typed, the latest version per key, personal data hashed; `transform.conformed`). "
              "The difference is what the checks add: every row rule, Deequ's suite, the counts, the quarantine "
              "rows and caching for them.", "",
              "| scale | Spark SQL | plain scan s | typed load s | validation s | validation - typed load s | "
              "difference / plain scan |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for scale in scales:
        for mode in SQL_MODES:
            med = {r["step"]: r["median_s"] for r in results
                   if r["scale"] == scale and r["mode"] == mode and r["step"] != "phases"}
            scan, load, full = med["plain scan"], med[TYPED_LOAD], med["validation (Deequ + row rules + dedup)"]
            lines.append(f"| x{scale:g} | {mode} | {scan} | {load} | {full} | {full - load:.2f} | "
                         f"{(full - load) / scan:.1f}x |")
    lines += ["", "## With the writes", "",
              "The same date written, as a job would, into tables that hold the first date (restored before each "
              f"run, untimed), with code generation (how the silver job runs a date from `quality.compile_min_mb`). "
              f"*{LOAD_WRITTEN}*: the typed load above merged insert-only on the key into a table of its own. "
              f"*{SILVER_WRITTEN}*: `run_silver` for the table alone: validation, the insert-only MERGE into silver, "
              "the quarantine's rows and the quality metrics and reconciliation (the quality report is not written).",
              "", "| scale | rows | load without checks, written s | silver job s | silver job / load |",
              "| --- | --- | --- | --- | --- |"]
    for scale in scales:
        med = {r["step"]: r for r in results if r["scale"] == scale and r["step"] in (LOAD_WRITTEN, SILVER_WRITTEN)}
        if len(med) == 2:
            load, job = med[LOAD_WRITTEN]["median_s"], med[SILVER_WRITTEN]["median_s"]
            lines.append(f"| x{scale:g} | {med[LOAD_WRITTEN]['rows']} | {load} | {job} | {job / load:.2f}x |")
    phase_rows = [r for r in results if r["step"] == "phases"]
    names = list(phase_rows[0]["phases"]) if phase_rows else []
    lines += ["", "## Where the time goes", "",
              "The same validation timed step by step (median seconds of the repeats; `validate_table` "
              "runs these steps, the last two as the silver MERGE and the quarantine write read them). "
              "The plain scan's median is in the last column for scale.", "",
              "| scale | Spark SQL | " + " | ".join(PHASES[n] for n in names) + " | plain scan |",
              "| --- | --- | " + " | ".join("---" for _ in names) + " | --- |"]
    for r in phase_rows:
        base = next(x["median_s"] for x in results
                    if x["scale"] == r["scale"] and x["mode"] == r["mode"] and x["step"] == "plain scan")
        lines.append(f"| x{r['scale']:g} | {r['mode']} | " + " | ".join(str(r["phases"][n]) for n in names)
                     + f" | {base} |")
    out_md.write_text("\n".join(lines) + "\n")
    return results


TYPED_LOAD = "typed load, no checks (type, latest per key, hash)"


def _typed_rows(bronze, spec):
    """What silver needs of ``bronze`` with no check at all: every column typed, the latest version per
    key, personal data hashed (``TYPED_LOAD``)."""
    from lakehouse.quality import transform

    return transform.pseudonymize(transform.latest(transform.conformed(bronze, spec), spec), spec, "bench-key")


LOAD_WRITTEN = "typed load, no checks, written (insert-only MERGE)"
SILVER_WRITTEN = "silver job for the table (validation, MERGE, quarantine, metrics)"


def _written_steps(spark, settings: Settings, spec, first_day: dt.date, day: dt.date, root: Path):
    """(step, timed call, untimed restore) of the date ``day`` written both ways: the typed load merged
    insert-only into a table of its own, and the silver job for ``spec``'s table alone. Both tables first
    get ``first_day`` the same way; the lake's tables other than bronze are kept as they are then and
    put back before each run, so every run writes into the same state."""
    from pyspark.sql import functions as F

    from lakehouse import delta_io
    from lakehouse.ingest.stage import ingest_source
    from lakehouse.silver.stage import run_silver

    bronze_uri = tables.bronze(spec.bronze).uri(settings)
    load_uri = f"{settings.lake_uri}/bench_load/{spec.table}"

    def typed(date: dt.date):
        rows = delta_io.read(spark, bronze_uri).where(F.col("_ingest_date") == F.lit(date.isoformat()).cast("date"))
        return _typed_rows(rows, spec).withColumn("_ingest_date", F.lit(date.isoformat()).cast("date"))

    ingest_source(spark, settings, spec.source, first_day)
    run_silver(spark, settings, first_day, tables=[spec.table])
    delta_io.merge_insert_only(spark, load_uri, typed(first_day), spec.key, "bench")
    lake, saved, inputs = Path(settings.path(settings.lake.root)), root / "lake-first-date", {"bronze", "raw"}
    shutil.copytree(lake, saved, ignore=lambda folder, names: inputs if Path(folder) == lake else [])

    def restore():
        spark.catalog.clearCache()
        spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()  # snapshots of the replaced tables
        for child in lake.iterdir():
            if child.name not in inputs:
                shutil.rmtree(child)
        for child in saved.iterdir():
            shutil.copytree(child, lake / child.name)

    def load():
        if not delta_io.merge_insert_only(spark, load_uri, typed(day), spec.key, "bench"):
            raise LakehouseError(f"bench: the load of {day} inserted nothing: its table was not restored")

    def job():
        outcome = run_silver(spark, settings, day, tables=[spec.table]).tables[0]
        if outcome.silver_rows - outcome.already_stored <= 0:
            raise LakehouseError(f"bench: silver.{spec.table} {day} inserted nothing: its table was not restored")

    return [(LOAD_WRITTEN, load, restore), (SILVER_WRITTEN, job, restore)]


def _noop(df) -> None:
    """Compute every column of ``df`` and write nothing."""
    df.write.format("noop").mode("overwrite").save()


PHASES = {"annotate": "annotate, no-op write", "cache": "annotate + rank by key + cache",
          "deequ": "Deequ suite (rules, uniqueness and every count)",
          "latest": "silver rows (latest per key, named)",
          "quarantine": "quarantine rows + JSON"}


def _validation_phases(spark, settings: Settings, spec, day: dt.date, bronze) -> dict:
    """Wall seconds of each step ``validate_table`` takes, run one by one on the same rows."""
    from lakehouse.quality import transform
    from lakehouse.quality.deequ_checks import verify
    from lakehouse.silver.stage import checked_rows, named, quarantine_rows

    out = {}

    def timed(name, fn):
        t = time.perf_counter()
        fn()
        out[name] = time.perf_counter() - t

    annotated = checked_rows(spark, settings, spec, day, bronze)
    timed("annotate", lambda: _noop(annotated))
    annotated = transform.ranked(annotated, spec).cache()
    try:
        timed("cache", annotated.count)
        timed("deequ", lambda: verify(spark, annotated, spec, day, tables.deequ_metrics_path(settings, spec.table)))
        _, quarantined = transform.split(annotated, spec)
        timed("latest", lambda: _noop(named(transform.latest_ranked(annotated, spec), spec, "bench-key")))
        timed("quarantine", lambda: _noop(quarantine_rows(quarantined, spec, bronze.columns)))
    finally:
        annotated.unpersist()
    return out


INSERT_MODES = {"whole table": None, "dedup window": 7}


def _write_table(out_md: Path, lines: list[str], columns: dict[str, str], results: list[dict]) -> None:
    """Write ``lines`` and a Markdown table of ``results`` (heading -> result key; integers with
    thousands separators) to ``out_md``."""
    def cell(v):
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    lines = [*lines, "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(r[k]) for k in columns.values()) + " |" for r in results]
    out_md.write_text("\n".join(lines) + "\n")


FIRST_READ = "checkpoint + changes since, files listed anew"


@contextmanager
def _scratch_lake(settings: Settings, name: str, spark=None, conf: dict[str, str] | None = None, **overrides):
    """(settings of a temporary lake, a Spark session, the temporary folder) for a benchmark: the session
    given (left running) or a new one with code generation on and ``conf`` (stopped at the end); the
    folder is deleted at the end. ``overrides`` go into the settings."""
    from lakehouse.spark import CODE_GENERATION, build_session

    work = Path(tempfile.mkdtemp(prefix=f"churn-bench-{name}-"))
    run = load_settings(settings.env, overrides={"lake": {"root": str(work / "lake")}, "logs_dir": str(work / "logs"),
                                                 **overrides})
    own = spark is None
    if own:
        spark = build_session(run, f"bench-{name}", {**CODE_GENERATION, **(conf or {})})
    try:
        yield run, spark, work
    finally:
        if own:
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)


def bench_insert(settings: Settings, histories: list[int], out_json: Path, out_md: Path, rows_per_day: int = 947_000,
                 repeats: int = 3, spark=None) -> list[dict]:
    """One day's insert into an insert-only silver table (web_events' columns) against the days it holds.

    Per history length: a Delta table of ``history`` days of synthetic events (one file a day, as the daily
    MERGEs leave them), then the next day's rows (plus 1 % re-delivered from the day before) inserted the
    way the silver job inserts them (``silver._insert_new``), looking keys up in the whole table and in a
    7-day dedup window. Between runs the table is restored to its built version; both ways must insert
    the same rows. Code generation on (a date this large is compiled by the silver job too) unless
    ``spark`` is given: a session to use (and leave running) instead of a new one."""
    from pyspark.sql import functions as F

    from lakehouse import delta_io
    from lakehouse.quality.rules import load_rules
    from lakehouse.quality.transform import window_counts
    from lakehouse.silver.stage import _insert_new

    spec = load_rules()["web_events"]
    start = dt.date(2025, 1, 1)
    customers = max(rows_per_day // 5, 1)
    results = []

    def events(day: dt.date, n: int):
        stamp = day.strftime("%Y%m%d")
        cust = (F.col("id") % customers).cast("string")
        return spark.range(n).select(
            F.concat_ws("-", cust, F.lit(stamp), (F.col("id") / customers).cast("int").cast("string"),
                        (F.col("id") % 7).cast("string")).alias("event_id"),
            cust.alias("customer_id"), F.concat_ws("-", cust, F.lit(stamp)).alias("session_id"),
            F.lit("page_view").alias("event_type"), F.lit("/pricing").alias("page"), F.lit("web").alias("device"),
            (F.lit(day.isoformat()).cast("timestamp") + F.make_dt_interval(secs=F.col("id") % 86400)).alias("ts"),
            F.lit(f"events_{day}.jsonl").alias("_source_file"), F.col("id").alias("_line"),
            F.lit(None).cast("array<string>").alias("_fixes"), F.lit(None).cast("array<string>").alias("_warnings"),
            F.lit(day.isoformat()).cast("date").alias("_ingest_date"), F.lit("bench").alias("_run_id"))

    with _scratch_lake(settings, "insert", spark) as (_, spark, work):
        for history in histories:
            uri = str(work / f"silver_{history}")
            t = time.perf_counter()
            stored = None
            for i in range(history):
                one = events(start + dt.timedelta(days=i), rows_per_day)
                stored = one if stored is None else stored.unionByName(one)
            # one file a day, as the daily inserts leave them (ranges, not hashes: no two days share a file)
            stored.repartitionByRange(history, "_ingest_date").write.format("delta").save(uri)
            built = delta_io.latest_version(spark, uri)
            log.info("bench insert: %d days x %d rows stored in %.1f s", history, rows_per_day, time.perf_counter() - t)
            day = start + dt.timedelta(days=history)
            again = max(rows_per_day // 100, 1)
            new = events(day, rows_per_day).unionByName(events(day - dt.timedelta(days=1), again)).cache()
            new.count()
            # what validation counts for the insert: rows older than the window (none here) and the days back
            # to the earliest event in it (1: the re-delivered rows are of yesterday)
            windowed = spec.model_copy(update={"dedup_window_days": INSERT_MODES["dedup window"]})
            outside, lookback = new.agg(*window_counts(windowed, day, F.lit(True))).first()
            inserted = {}
            for mode, window in INSERT_MODES.items():
                mode_spec = spec.model_copy(update={"dedup_window_days": window})

                def once():
                    inserted[mode] = _insert_new(spark, mode_spec, day, uri, new, "{}", outside, lookback)

                timing = repeat_timed(once, repeats,
                                      before=lambda: spark.sql(f"RESTORE TABLE delta.`{uri}` TO VERSION AS OF {built}"))
                results.append({"history_days": history, "stored_rows": history * rows_per_day, "mode": mode,
                                "new_rows": rows_per_day + again, "inserted": inserted[mode], **timing})
                log.info("bench insert %d days, %s: %s", history, mode, results[-1])
            if len(set(inserted.values())) != 1 or inserted["whole table"] != rows_per_day:
                raise LakehouseError(f"bench insert: {history} days: inserted {inserted}, expected {rows_per_day} each")
            new.unpersist()
            shutil.rmtree(uri, ignore_errors=True)
    _save_json(out_json, results)
    lines = ["# Silver insert benchmark", "",
             f"Machine: {machine()}. Measured by `lakehouse bench insert`. An insert-only silver table with "
             "web_events' columns holding *history* days of "
             f"{rows_per_day:,} events (one file a day, as the daily MERGEs leave them); the next day's "
             f"{rows_per_day:,} events plus {again:,} re-delivered from the day before are inserted as the silver "
             "job inserts them (`silver._insert_new`): keys looked up in the whole table (no `dedup_window_days`), "
             "or, with `dedup_window_days: 7` (the event tables' setting), among the stored events from the day of "
             "the earliest new event in the window on (here the day before). "
             f"Code generation on; best and median of {repeats} runs after a warm-up, the table restored to its "
             "built version before each; both ways insert the same rows (checked).", ""]
    _write_table(out_md, lines, {"days stored": "history_days", "rows stored": "stored_rows", "keys looked up in": "mode",
                                 "new rows": "new_rows", "inserted": "inserted", "best s": "best_s",
                                 "median s": "median_s"}, results)
    return results


def bench_entities(settings: Settings, subscriptions: int, ages: list[int], out_json: Path, out_md: Path,
                   change_rate: float = 0.005, repeats: int = 3, spark=None) -> list[dict]:
    """Gold's read of an entity's state as of D against the age of the lake, from the whole history and
    from the month's checkpoint (``gold.entities``).

    One synthetic ``silver.subscriptions_history``: ``subscriptions`` rows on the first day, then
    ``change_rate`` of them changed a day (a new version each), one file a day. For each age A the state
    as of day A (as known on A: the later days are pruned by ``_ingest_date``, so it is the lake as it
    was that day) is read by ``entity_store.read_state_as_of``, first with no checkpoint stored (the whole history),
    then after ``entity_store.write_checkpoints`` stored that month's (timed too: it runs once a month); both
    reads must give the same rows (checked). Each read ends in a no-op write; best and median of
    ``repeats`` after a warm-up. Code generation on unless ``spark`` is given (a session to use and leave
    running)."""
    from pyspark.sql import functions as F

    from lakehouse import delta_io
    from lakehouse.gold import entities, entity_store

    start, per_day, days = dt.date(2025, 1, 1), max(int(subscriptions * change_rate), 1), max(ages)
    total = subscriptions + per_day * (days - 1)
    results = []

    def versions(ids, plan: str, price: float, day, stamp):
        return ids.select(F.col("sid").alias("subscription_id"), (F.col("sid") % max(subscriptions * 9 // 10, 1))
                          .alias("customer_id"), F.lit(plan).alias("plan"), F.lit("active").alias("status"),
                          F.lit("2024-06-01").cast("date").alias("start_date"),
                          F.lit(None).cast("date").alias("cancel_date"),
                          F.lit(price).cast("decimal(10,2)").alias("monthly_price"), stamp.alias("updated_at"),
                          day.alias("_ingest_date"))

    with _scratch_lake(settings, "entities", spark, gold={"entity_checkpoint_min_mb": 0}) as (run, spark, _):
        uri = tables.silver_history("subscriptions").uri(run)
        t = time.perf_counter()
        first = versions(spark.range(subscriptions).withColumnRenamed("id", "sid"), "pro", 19.99,
                         F.lit(start.isoformat()).cast("date"), F.lit(f"{start} 08:00:00").cast("timestamp"))
        n_day = (F.col("id") / per_day).cast("int")  # the i-th day after the first
        later = versions(spark.range(per_day * (days - 1)).withColumn("sid", (F.col("id") * 7919) % subscriptions),
                         "team", 29.99, F.date_add(F.lit(start.isoformat()).cast("date"), n_day + 1),
                         F.lit(f"{start + dt.timedelta(days=1)} 00:00:00").cast("timestamp")
                         + F.make_dt_interval(days=n_day, secs=F.col("id") % 86400))
        first.unionByName(later).repartitionByRange(days, "_ingest_date").write.format("delta") \
            .partitionBy("_ingest_date").save(uri)
        mib = round(delta_io.table_bytes(spark, uri) / 2 ** 20, 1)  # all ages' days: a lake of an age holds a share
        log.info("bench entities: %d days of history (%d + %d a day, %.1f MiB) built in %.1f s", days, subscriptions,
                 per_day, mib, time.perf_counter() - t)
        for age in ages:
            day = start + dt.timedelta(days=age - 1)
            stored = subscriptions + per_day * (age - 1)
            got = {}

            def read(how: str, listed: bool = True):
                got[how] = delta_io.content_checksum(entity_store.read_state_as_of(spark, run, "subscriptions", day))
                return repeat_timed(lambda: entity_store.read_state_as_of(spark, run, "subscriptions", day).write
                                    .format("noop").mode("overwrite").save(), repeats,
                                    before=None if listed else entity_store.forget_file_lists)

            def row(how: str, timing: dict, rows_read: int) -> dict:
                return {"age_days": age, "history_rows": stored, "history_mib": round(mib * stored / total, 1),
                        "read": how, "rows_read": rows_read, **timing}

            whole = read("whole history")
            t0 = time.perf_counter()
            written = entity_store.write_checkpoints(spark, run, [day], "{}", entities=("subscriptions",))
            build = round(time.perf_counter() - t0, 2)
            from_checkpoint = next(iter(written.values())) + per_day * (day - entities.checkpoint_day(day)).days
            results += [row("whole history", whole, stored),
                        row("checkpoint of the month (once a month)", {"best_s": build, "median_s": build},
                            subscriptions + per_day * (entities.checkpoint_day(day) - start).days),
                        row(FIRST_READ, read(FIRST_READ, listed=False), from_checkpoint),
                        row("checkpoint + changes since", read("checkpoint + changes since"), from_checkpoint)]
            if len(set(got.values())) != 1:
                raise LakehouseError(f"bench entities: age {age}: the state from the checkpoint differs from the "
                                     f"whole history's ({got})")
            log.info("bench entities: age %d days: %s", age, results[-4:])
    _save_json(out_json, results)
    lines = ["# Entity state benchmark", "",
             f"Machine: {machine()}. Measured by `lakehouse bench entities`. A synthetic "
             f"`silver.subscriptions_history`: {subscriptions:,} subscriptions on the first day, then "
             f"{per_day:,} changed a day ({change_rate:.1%}), one file a day. For a lake of *age* days, the "
             "subscription state as of its last day as gold reads it (`gold.entity_store.read_state_as_of`: the latest "
             "version per subscription), from the whole history and from the checkpoint of the day's month plus "
             "the changes since; both give the same rows (checked). The checkpoint row is its one-off build "
             f"(a pass over the history up to the month's first day). Code generation on; best and median of {repeats} "
             "reads after a warm-up, each ending in a no-op write. A process lists each table's files once per "
             "version (`gold.entities`: a Spark job each, which the gold job's checkpoint step pays); the row "
             f"'{FIRST_READ}' forgets those lists before each read, the last row reuses them.", "",
             "History MiB: the table's files (Delta's checksum file) in proportion to the rows of the age; "
             "`gold.entity_checkpoint_min_mb` is compared with it.", ""]
    _write_table(out_md, lines, {"age (days)": "age_days", "history rows": "history_rows", "history MiB": "history_mib",
                                 "read": "read", "rows read": "rows_read", "best s": "best_s", "median s": "median_s"},
                 results)
    return results


def bench_online(settings: Settings, lookups: int, out_json: Path, out_md: Path) -> dict:
    """Latency of the online store: in-process lookups (1 and 100 ids) and the HTTP endpoint."""
    import random
    import statistics
    import threading

    import requests
    from werkzeug.serving import make_server

    from lakehouse.featurestore.server import create_app
    from lakehouse.featurestore.store import OnlineStore

    store = OnlineStore(settings)
    ids = [r[0] for r in store.con.execute(f'SELECT customer_id FROM "{store.view}"')]
    if not ids:
        raise RuntimeError(f"online store {store.path} is empty: materialize a run first")
    rng = random.Random(1)

    def timed(fn, n):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
        out.sort()
        return {"n": n, "p50_ms": round(statistics.median(out), 3), "p95_ms": round(out[int(n * 0.95) - 1], 3),
                "p99_ms": round(out[int(n * 0.99) - 1], 3), "max_ms": round(out[-1], 3)}

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    single = timed(lambda: store.get([rng.choice(ids)]), lookups)
    batch = timed(lambda: store.get(rng.sample(ids, min(100, len(ids)))), max(50, lookups // 20))
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    session = requests.Session()
    url = f"http://127.0.0.1:{server.server_port}/features/"
    try:
        http = timed(lambda: session.get(url + rng.choice(ids), timeout=5).raise_for_status(), lookups)
    finally:
        server.shutdown()
    result = {"machine": machine(), "store": str(store.path), "customers": len(ids),
              "features": len(store.get([ids[0]])[0]) - 2, "single_id": single, "batch_100_ids": batch,
              "http_single_id": http}
    store.close()
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2))
    rows = [("in-process, 1 id", single), ("in-process, 100 ids", batch), ("HTTP GET /features/<id>", http)]
    out_md.write_text("\n".join([
        "# Online feature store latency", "",
        f"Measured by `lakehouse bench online` on {result['machine']}: SQLite store {result['customers']} "
        f"customers x {result['features']} features, random ids, no warm-up.", "",
        "| lookup | n | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|",
        *[f"| {name} | {r['n']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} |" for name, r in rows],
        "", "SQLite answers a primary-key lookup from the page cache; the HTTP figure adds Flask/werkzeug and a "
        "local TCP round trip. A served deployment behind the same interface would use Redis or a key-value "
        "table in PostgreSQL.", ""]))
    return result


def bench_gold(settings: Settings, dates: list[dt.date], out_json: Path, out_md: Path, repeats: int = 3) -> list[dict]:
    """The gold snapshot's cost against the age of the lake, on the configured lake.

    For each date D (the lake must hold gold activity up to D, e.g. after ``lakehouse run``): the
    lifetime state of D rolled forward from D-1's against one pass over all daily activity up to D,
    and the snapshot read from the stored state against the full recompute (state computed in the
    same query). The states of D-1 and D are written as the pipeline writes them (same rows, so the
    lake's tables keep their content).
    """
    from pyspark.sql import functions as F

    from lakehouse import delta_io
    from lakehouse.gold import features, stage
    from lakehouse.spark import build_session

    spark = build_session(settings, "bench-gold")
    results = []
    try:
        state_uri = tables.LIFETIME_STATE.uri(settings)
        daily = stage.read_daily(spark, settings, dates[0])
        first = daily.agg(F.min("activity_date")).first()[0]
        for day in dates:
            known = features.known_on(daily, day)
            rows_all = known.count()
            rows_window = known.where(F.col("activity_date") > F.lit(
                (day - dt.timedelta(days=features.WINDOW_DAYS)).isoformat()).cast("date")).count()
            for d in (day - dt.timedelta(days=1), day):  # store D-1's state, then D's (rolled)
                state, how = stage.build_state(spark, settings, d)
                delta_io.replace_partition(state, state_uri, "as_of_date", d.isoformat(), "bench-gold")
            steps = {
                "state: one pass over all daily rows": lambda: features.lifetime(known).count(),
                "state: rolled forward from D-1": lambda: stage.build_state(spark, settings, day)[0].count(),
                "snapshot from the stored state (daily run)": lambda: stage.build_snapshot(spark, settings, day).count(),
                "snapshot, full recompute (state in the query)":
                    lambda: stage.build_snapshot(spark, settings, day, daily=daily).count(),
            }
            for name, fn in steps.items():
                results.append({"date": day.isoformat(), "history_days": (day - first).days + 1,
                                "daily_rows_known": rows_all, "daily_rows_in_window": rows_window, "step": name,
                                **repeat_timed(fn, repeats)})
                log.info("bench gold %s: %s", day, results[-1])
    finally:
        spark.stop()
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"machine": machine(), "lake": settings.lake_uri, "results": results}, indent=2))
    lines = ["# Gold snapshot against the age of the lake", "",
             f"Machine: {machine()}. Lake: the configured one (`{settings.lake_uri}`), warm Spark session; best and "
             f"median of {repeats} runs after a warm-up; each step ends in a count. The daily run reads the stored "
             "state of D (rolled from D-1 by the step above it) and the daily activity rows of the last "
             f"{features.WINDOW_DAYS} activity days; the full recompute aggregates every daily row up to D.", "",
             "| date | days of history | daily rows up to D | of them in the window | step | best s | median s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['date']} | {r['history_days']} | {r['daily_rows_known']:,} | {r['daily_rows_in_window']:,} | "
                     f"{r['step']} | {r['best_s']} | {r['median_s']} |")
    out_md.write_text("\n".join(lines) + "\n")
    return results


def _cpu_seconds(stat: str) -> float:
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, threads that ended included."""
    return _cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def _thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Name and CPU seconds (user + system) of each live thread of process ``pid``, by thread id, read
    from /proc (Linux). A thread that ended is no longer listed (see _process_cpu)."""
    threads: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended between listing and reading
            continue
        threads[int(task.name)] = (stat[stat.index("(") + 1:stat.rindex(")")], _cpu_seconds(stat))
    return threads


def cpu_by_group(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each thread group used between two ``_thread_cpu`` readings: threads whose names
    differ only in digits (C2 CompilerThread0/1, Executor task launch worker-3...) are one group."""
    groups: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        key = re.sub(r"\d+", "N", name)
        groups[key] = groups.get(key, 0.0) + cpu - before.get(tid, (name, 0.0))[1]
    return groups


def bench_cpu(settings: Settings, days: int, out_json: Path, out_md: Path) -> dict:
    """Where the pipeline's time goes on small data: ``days`` simulated dates through ingest, silver
    and gold in one Spark session (the runner's path), with per date the stage times, and over the
    run the driver JVM's CPU per thread group, the Python process's CPU and the Spark jobs started."""
    from lakehouse.pipeline import run_range
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session

    if days < 1:
        raise LakehouseError(f"bench cpu needs at least one date (--days {days})")
    if not Path("/proc/self/task").is_dir():
        raise LakehouseError("bench cpu reads thread CPU times from /proc: Linux only")
    work = Path(tempfile.mkdtemp(prefix="churn-bench-cpu-"))
    token = os.environ.setdefault(settings.simulator.api.token_env, "bench-token")
    spark = None
    try:
        sim = settings.simulator.model_copy(update={"days": max(days, settings.simulator.days)})
        summary = generate_sources(sim, work / "sources")
        with ApiServer(work / "sources" / "support", token, rate_limit_per_s=10000) as api:
            run = _lake_settings(settings, work, api.url)
            t0 = time.perf_counter()
            spark = build_session(run, "bench-cpu")
            session_s = time.perf_counter() - t0
            pid = int(spark.sparkContext._jvm.ProcessHandle.current().pid())
            scheduler = spark.sparkContext._jsc.sc().dagScheduler()
            jobs0, cpu0, total0, py0 = int(scheduler.nextJobId()), _thread_cpu(pid), _process_cpu(pid), os.times()
            t0 = time.perf_counter()
            start = dt.date.fromisoformat(summary["start_date"])
            dates = [start + dt.timedelta(days=i) for i in range(days)]
            stages = run_range(spark, run, dates, ["ingest", "silver", "gold"])
            wall = time.perf_counter() - t0
            jobs, cpu1, total1, py1 = (int(scheduler.nextJobId()) - jobs0, _thread_cpu(pid), _process_cpu(pid),
                                       os.times())
    finally:
        if spark is not None:
            from lakehouse.quality.runtime import shutdown_deequ

            shutdown_deequ(spark)
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    groups = cpu_by_group(cpu0, cpu1)
    threads = {k: round(v, 1) for k, v in groups.items() if v >= 0.05}
    # threads that ended during the run (idle executor workers leave after 60 s) are not in the live
    # list: what the process total has beyond the live threads is theirs
    ended = round(total1 - total0 - sum(groups.values()), 1)
    if ended >= 0.05:
        threads["(threads that ended)"] = ended
    result = {"machine": machine(), "env": settings.env, "customers": sim.customers, "days": days,
              "session_s": round(session_s, 1), "wall_s": round(wall, 1), "spark_jobs": jobs,
              "python_cpu_s": round(py1.user - py0.user + py1.system - py0.system, 1),
              "jvm_cpu_s": round(total1 - total0, 1),
              "jvm_threads": dict(sorted(threads.items(), key=lambda kv: -kv[1])), "stages": stages}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2))
    out_md.write_text(render_cpu_markdown(result))
    return result


# Linux keeps 15 characters of a thread's name; cpu_by_group folds digits to N
THREAD_LABELS = {"CN CompilerThre": "JIT compilers (C1, C2)", "Executor task l": "executor tasks",
                 "Thread-N": "Py4J threads (driver work asked by Python: planning, commits)",
                 "GN Conc#N": "G1 concurrent marking", "GC Thread#N": "GC workers",
                 "dag-scheduler-e": "DAG scheduler", "Sweeper thread": "code cache sweeper",
                 "spark-listener-": "Spark listeners"}


def render_cpu_markdown(r: dict) -> str:
    cores = os.cpu_count() or 1
    busy = (r["jvm_cpu_s"] + r["python_cpu_s"]) / (r["wall_s"] * cores) if r["wall_s"] else 0
    lines = ["# Where a pipeline date's time goes", "",
             f"Machine: {r['machine']}. `lakehouse --env {r['env']} bench cpu --days {r['days']}`: "
             f"{r['customers']} simulated customers, {r['days']} dates through ingest, silver and gold in one "
             "Spark session (the runner's path). Thread CPU is read from /proc; one run.", "",
             "| date | ingest s | silver s | gold s |", "| --- | --- | --- | --- |"]
    lines += [f"| {s['date']} | {s.get('ingest', '')} | {s.get('silver', '')} | {s.get('gold', '')} |"
              for s in r["stages"]]
    lines += ["", f"Session start {r['session_s']} s (not in the dates). Over the {r['days']} dates: wall "
              f"{r['wall_s']} s, {r['spark_jobs']} Spark jobs, driver JVM CPU {r['jvm_cpu_s']} s, Python CPU "
              f"{r['python_cpu_s']} s: the {cores} cores were {busy:.0%} busy.", "",
              "| JVM thread group | CPU s | share of JVM CPU |", "| --- | --- | --- |"]
    total = r["jvm_cpu_s"] or 1
    lines += [f"| {THREAD_LABELS.get(name, name)} | {sec} | {sec / total:.0%} |"
              for name, sec in list(r["jvm_threads"].items())[:12]]
    return "\n".join(lines) + "\n"
