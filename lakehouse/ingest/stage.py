"""Ingest one source for one logical date: fetch (with retries) -> raw zone -> bronze Delta.

Order matters for "no partial output": every type of the source is fetched completely first; only
then is each raw partition swapped in atomically and its bronze partition replaced in one Delta
commit. A failure before that point leaves the lake exactly as it was; every attempt is audited
either way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError, SourceError
from lakehouse.ingest import bronze
from lakehouse.ingest.fetch import Fetched, count_records, fetch_api_endpoint, fetch_files, fetch_jdbc_table
from lakehouse.ingest.retry import Attempt, AttemptLog, call_with_retries
from lakehouse.run_ids import new_run_id
from lakehouse.storage import storage_for
from lakehouse.tables import bronze_table, raw_partition

log = logging.getLogger(__name__)
RUN_METADATA = ["_run_id", "_ingested_at"]


@dataclass
class TypeResult:
    type: str
    rows_fetched: int
    bytes: int
    files: int
    bronze_table: str
    bronze_rows: int = 0
    parse_errors: int = 0
    new_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    raw_path: str = ""
    bronze_version: int | None = None


@dataclass
class IngestResult:
    source: str
    run_date: str
    run_id: str
    seconds: float
    types: list[TypeResult]

    def as_dict(self) -> dict:
        return asdict(self)


def _csv_header(data: bytes) -> list[str]:
    import csv

    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    return next(csv.reader([first])) if first else []


def _fetch(spark, settings: Settings, source: str, type_: str, run_date: dt.date, attempts: AttemptLog) -> Fetched:
    cfg = getattr(settings.sources, source)
    retry = settings.retry
    measure = lambda f: (f.rows, f.bytes)  # noqa: E731
    if cfg.kind == "files":
        return call_with_retries(lambda: fetch_files(settings, source, cfg, run_date), retry, attempts, measure)
    if cfg.kind == "jdbc":
        return call_with_retries(lambda: fetch_jdbc_table(spark, source, cfg, type_, run_date), retry, attempts,
                                 measure)

    def page_measure(resp):
        try:
            return len(resp.json()["data"]), len(resp.content)
        except (ValueError, KeyError):
            return 0, len(resp.content)

    return fetch_api_endpoint(settings, source, cfg, type_, run_date,
                              call=lambda fn: call_with_retries(fn, retry, attempts, page_measure))


def _manifest(source: str, type_: str, run_date: dt.date, run_id: str, fetched: Fetched, attempts: AttemptLog,
              fmt: str) -> bytes:
    files = []
    for name, data in sorted(fetched.files.items()):
        rows = count_records(data, fmt)
        files.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": rows})
    doc = {
        "source": source, "type": type_, "date": run_date.isoformat(), "run_id": run_id,
        "fetched_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "attempts": len(attempts.attempts), "rows": fetched.rows, "bytes": fetched.bytes,
        "files": files, "source_details": fetched.details,
    }
    return json.dumps(doc, indent=2, sort_keys=True).encode()


def write_audit(spark: SparkSession, settings: Settings, run_id: str, attempts: list[Attempt]) -> None:
    if not attempts:
        return
    schema = T.StructType([
        T.StructField("run_id", T.StringType()), T.StructField("source", T.StringType()),
        T.StructField("type", T.StringType()), T.StructField("run_date", T.StringType()),
        T.StructField("attempt", T.IntegerType()), T.StructField("status", T.StringType()),
        T.StructField("rows", T.LongType()), T.StructField("bytes", T.LongType()),
        T.StructField("duration_s", T.DoubleType()), T.StructField("error", T.StringType()),
    ])
    rows = [(run_id, a.source, a.type, a.run_date, a.attempt, a.status, a.rows, a.bytes, a.duration_s, a.error)
            for a in attempts]
    df = spark.createDataFrame(rows, schema).withColumn("logged_at", F.current_timestamp())
    delta_io.append(df, tables.INGEST_AUDIT.uri(settings), delta_io.commit_metadata(run_id, "ingest-audit", attempts[0].run_date))


def ingest_source(spark: SparkSession, settings: Settings, source: str, run_date: dt.date,
                  run_id: str | None = None) -> IngestResult:
    """Ingest every type of ``source`` for ``run_date``; raise SourceError with a clear reason on failure."""
    if source not in type(settings.sources).model_fields:
        known = ", ".join(type(settings.sources).model_fields)
        raise LakehouseError(f"unknown source {source!r} (known: {known})")
    started = time.perf_counter()
    run_id = run_id or new_run_id(f"ingest_{source}", run_date)
    storage = storage_for(settings)
    storage.check()
    cfg = getattr(settings.sources, source)
    fmt = {"files": getattr(cfg, "format", None), "jdbc": "jsonl", "http": "api"}[cfg.kind]
    all_attempts: list[Attempt] = []
    fetched: dict[str, tuple[Fetched, AttemptLog]] = {}
    try:
        for type_ in settings.source_types(source):
            attempts = AttemptLog(source, type_, run_date.isoformat())
            try:
                fetched[type_] = (_fetch(spark, settings, source, type_, run_date, attempts), attempts)
            finally:
                all_attempts.extend(attempts.attempts)
            log.info("%s/%s %s: fetched %d records, %d bytes in %d attempt(s)", source, type_, run_date,
                     fetched[type_][0].rows, fetched[type_][0].bytes, len(attempts.attempts))
    except Exception as exc:
        write_audit(spark, settings, run_id, all_attempts)
        tries = sum(1 for a in all_attempts if a.type == (all_attempts[-1].type if all_attempts else None))
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"ingest of {source} for {run_date} failed after {tries} attempt(s): {reason}; "
                          f"nothing was written (run {run_id})") from None

    results = []
    for type_, (data, attempts) in fetched.items():
        rel = raw_partition(source, type_, run_date)
        files = dict(data.files)
        files["_manifest.json"] = _manifest(source, type_, run_date, run_id, data, attempts, fmt)
        storage.replace_dir(rel, files, tmp_tag=run_id)
        partition_uri = storage.join(rel)
        headers = {n: _csv_header(b) for n, b in data.files.items()} if fmt == "csv" else {}
        expected = settings.schemas.get(f"{source}.{type_}")
        if expected is None:
            raise LakehouseError(f"no expected columns for {source}.{type_} in config (schemas.{source}.{type_})")
        df, extra, missing, n_rows, n_bad, parsed = bronze.parse_raw(spark, partition_uri, sorted(data.files), fmt,
                                                                     expected, headers)
        if extra:
            log.warning("%s/%s %s: new column(s) %s not in schemas.%s.%s; bronze schema evolves (see table history)",
                        source, type_, run_date, extra, source, type_)
        if missing:
            log.warning("%s/%s %s: expected column(s) %s missing from the data; they are null in bronze",
                        source, type_, run_date, missing)
        df = (df.withColumn("_run_id", F.lit(run_id)).withColumn("_ingested_at", F.current_timestamp())
              .withColumn("_ingest_date", F.lit(run_date.isoformat()).cast("date")))
        name = bronze_table(source, type_)
        table = tables.bronze(name)
        uri = table.uri(settings)
        meta = delta_io.commit_metadata(run_id, f"ingest_{source}", run_date.isoformat(), rows=data.rows,
                                        new_columns=extra)
        before = delta_io.latest_version(spark, uri)
        delta_io.replace_partition(df, uri, table.partition, run_date.isoformat(), meta, merge_schema=bool(extra))
        parsed.unpersist()
        version, written = delta_io.last_commit_rows(spark, uri)
        if version == before:  # an empty batch into an empty partition: Delta makes no commit
            written = 0
        if written is not None and written != n_rows:
            raise LakehouseError(f"{source}/{type_} {run_date}: parsed {n_rows} rows but the Delta commit "
                                 f"v{version} wrote {written}")
        result = TypeResult(type_, data.rows, data.bytes, len(data.files), f"bronze.{name}", n_rows, n_bad,
                            extra, missing, partition_uri, version)
        if result.bronze_rows + _dropped_blank(data, fmt) < data.rows:
            raise LakehouseError(f"{source}/{type_} {run_date}: fetched {data.rows} records but bronze holds "
                                 f"{result.bronze_rows}; refusing to lose data")
        log.info("%s/%s %s: bronze.%s v%s holds %d rows (%d unparseable, kept with raw text)", source, type_,
                 run_date, name, result.bronze_version, result.bronze_rows, result.parse_errors)
        results.append(result)
    write_audit(spark, settings, run_id, all_attempts)
    outcome = IngestResult(source, run_date.isoformat(), run_id, round(time.perf_counter() - started, 2), results)
    log.info("ingest of %s for %s done in %.1fs: %d records, %d unparseable kept, %d fetch attempt(s) for %d type(s), "
             "%d of them failed and were retried (run %s)", source, run_date, outcome.seconds,
             sum(r.bronze_rows for r in results),
             sum(r.parse_errors for r in results), len(all_attempts), len(results),
             sum(1 for a in all_attempts if a.status == "retry"), run_id)
    return outcome


def _dropped_blank(data: Fetched, fmt: str) -> int:
    """Blank lines are counted as records by line counting but carry nothing to keep."""
    if fmt == "api":
        return 0
    return sum(sum(1 for ln in b.split(b"\n")[:-1] if not ln.strip()) for b in data.files.values())
