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
        version, written = delta_io.rows_written(spark, uri, before)
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


@dataclass
class RangeIngest:
    """What a history load's ingest of one source did: per type, bronze rows and unparseable rows kept."""

    source: str
    first: str
    last: str
    run_id: str
    seconds: float
    dates: int
    rows: dict[str, int] = field(default_factory=dict)
    parse_errors: dict[str, int] = field(default_factory=dict)
    bronze_versions: dict[str, int | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Landed:
    """A source's dates fetched into the raw zone by ``land_range``, ready for ``bronze_range``."""

    source: str
    dates: list[dt.date]
    run_id: str
    fmt: str
    partitions: dict[str, list]  # type -> (raw partition URI, file names, CSV headers, date) per date with data
    fetched_rows: dict[str, int]
    blank_lines: dict[str, int]
    gaps: list[str]
    seconds: float


def ingest_range(spark: SparkSession, settings: Settings, source: str, dates: list[dt.date],
                 run_id: str | None = None) -> RangeIngest:
    """``land_range`` then ``bronze_range``: one source's dates into the raw zone and bronze."""
    landed = land_range(spark, settings, source, dates, run_id)
    if landed.gaps:
        raise SourceError(gaps_message([landed]))
    return bronze_range(spark, settings, landed)


def gaps_message(landed: list[Landed]) -> str:
    """One error naming every source and date that could not be fetched."""
    parts = [f"{ld.source} on {len(ld.gaps)} date(s): " + "; ".join(ld.gaps) for ld in landed if ld.gaps]
    first, last = landed[0].dates[0], landed[0].dates[-1]
    return (f"ingest for {first}..{last} could not fetch " + " | ".join(parts)
            + f"; nothing was written to bronze (run {landed[0].run_id}; the dates fetched are in the raw zone, "
            "where a re-run replaces them)")


def land_range(spark: SparkSession, settings: Settings, source: str, dates: list[dt.date],
               run_id: str | None = None) -> Landed:
    """The first half of the history load's ingest of ``source``: every date of ``dates`` fetched (with
    retries, audited) and landed in its raw partition with its manifest, as a daily run lands it;
    ``bronze_range`` then parses each type once over those partitions and writes bronze in one commit.
    Bronze then holds what daily runs of the dates leave (the run id and load time aside; a column a
    source started sending is added at the end of the table).

    A date that cannot be fetched (a missing file, an unreachable database or API after the retries)
    does not stop the fetching of the others: ``Landed.gaps`` names each, and the caller writes no
    bronze (the dates fetched stay in the raw zone, where a re-run replaces them)."""
    if source not in type(settings.sources).model_fields:
        raise LakehouseError(f"unknown source {source!r} (known: {', '.join(type(settings.sources).model_fields)})")
    started = time.perf_counter()
    run_id = run_id or new_run_id(f"ingest_{source}", dates[-1])
    storage = storage_for(settings)
    storage.check()
    cfg = getattr(settings.sources, source)
    fmt = {"files": getattr(cfg, "format", None), "jdbc": "jsonl", "http": "api"}[cfg.kind]
    types = settings.source_types(source)
    all_attempts: list[Attempt] = []
    gaps: list[str] = []
    landed: dict[str, list] = {t: [] for t in types}
    fetched_rows = {t: 0 for t in types}
    blank = {t: 0 for t in types}
    for i, day in enumerate(dates):
        fetched: dict[str, tuple[Fetched, AttemptLog]] = {}
        try:
            for type_ in types:
                attempts = AttemptLog(source, type_, day.isoformat())
                try:
                    fetched[type_] = (_fetch(spark, settings, source, type_, day, attempts), attempts)
                finally:
                    all_attempts.extend(attempts.attempts)
        except Exception as exc:  # noqa: BLE001 - every gap is named once the other dates are fetched
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            gaps.append(f"{day} ({reason})")
            log.error("ingest of %s for %s failed: %s", source, day, reason)
            continue
        for type_, (data, attempts) in fetched.items():
            rel = raw_partition(source, type_, day)
            files = dict(data.files)
            files["_manifest.json"] = _manifest(source, type_, day, run_id, data, attempts, fmt)
            storage.replace_dir(rel, files, tmp_tag=run_id)
            headers = {n: _csv_header(b) for n, b in data.files.items()} if fmt == "csv" else {}
            if data.files:
                landed[type_].append((storage.join(rel), sorted(data.files), headers, day.isoformat()))
            fetched_rows[type_] += data.rows
            blank[type_] += _dropped_blank(data, fmt)
        if (i + 1) % 10 == 0 or i + 1 == len(dates):
            log.info("%s: fetched %d/%d dates (to %s) into the raw zone, %d records", source, i + 1, len(dates), day,
                     sum(fetched_rows.values()))
    write_audit(spark, settings, run_id, all_attempts)
    return Landed(source, list(dates), run_id, fmt, landed, fetched_rows, blank, gaps,
                  round(time.perf_counter() - started, 2))


def bronze_range(spark: SparkSession, settings: Settings, landed: Landed) -> RangeIngest:
    """Each type of a source landed by ``land_range`` parsed once over its dates and written to bronze
    in one commit that replaces those dates."""
    started = time.perf_counter()
    source, run_id, fmt = landed.source, landed.run_id, landed.fmt
    first, last = landed.dates[0], landed.dates[-1]
    fetched_rows, blank = landed.fetched_rows, landed.blank_lines
    result = RangeIngest(source, first.isoformat(), last.isoformat(), run_id, 0.0, len(landed.dates))
    for type_ in settings.source_types(source):
        expected = settings.schemas.get(f"{source}.{type_}")
        if expected is None:
            raise LakehouseError(f"no expected columns for {source}.{type_} in config (schemas.{source}.{type_})")
        name = bronze_table(source, type_)
        table = tables.bronze(name)
        uri = table.uri(settings)
        if not landed.partitions[type_]:
            log.warning("%s/%s %s..%s: no records on any date; bronze.%s unchanged", source, type_, first, last, name)
            continue
        df, extra, missing, n_rows, n_bad, parsed = bronze.parse_partitions(spark, landed.partitions[type_], fmt,
                                                                                    expected)
        if extra:
            log.warning("%s/%s %s..%s: new column(s) %s not in schemas.%s.%s; bronze schema evolves (see table "
                        "history)", source, type_, first, last, extra, source, type_)
        if missing:
            log.warning("%s/%s %s..%s: expected column(s) %s missing from the data; they are null in bronze", source,
                        type_, first, last, missing)
        base = [c for c in df.columns if c not in extra and c != "_ingest_date"]
        df = df.select(*base, F.lit(run_id).alias("_run_id"), F.current_timestamp().alias("_ingested_at"),
                       F.col("_ingest_date").cast("date").alias("_ingest_date"), *extra)
        meta = delta_io.commit_metadata(run_id, f"ingest_{source}", last.isoformat(), first_date=first.isoformat(),
                                        rows=fetched_rows[type_], new_columns=extra)
        where = f"_ingest_date >= '{first.isoformat()}' AND _ingest_date <= '{last.isoformat()}'"
        before = delta_io.latest_version(spark, uri)
        delta_io.replace_where(df, uri, where, meta, partition_by=table.partition_by, merge_schema=bool(extra))
        parsed.unpersist()
        version, written = delta_io.rows_written(spark, uri, before)
        if written is not None and written != n_rows:
            raise LakehouseError(f"{source}/{type_} {first}..{last}: parsed {n_rows} rows but the Delta commit "
                                 f"v{version} wrote {written}")
        if n_rows + blank[type_] < fetched_rows[type_]:
            raise LakehouseError(f"{source}/{type_} {first}..{last}: fetched {fetched_rows[type_]} records but bronze "
                                 f"holds {n_rows}; refusing to lose data")
        result.rows[type_], result.parse_errors[type_], result.bronze_versions[type_] = n_rows, n_bad, version
        log.info("%s/%s %s..%s: bronze.%s v%s holds %d rows of %d dates in one commit (%d unparseable, kept with raw "
                 "text)", source, type_, first, last, name, version, n_rows, len(landed.partitions[type_]), n_bad)
    result.seconds = round(landed.seconds + time.perf_counter() - started, 2)
    return result
