"""Data versioning on Delta: table history with run metadata, diffs, restore, retention, run ledger.

Every write in this project stamps its Delta commit with ``userMetadata`` = {run_id, job, run_date}
(``delta_io.commit_metadata``), so a table's history says which run wrote each version. The run
ledger (``ops/run_ledger``) adds, per job run, every table it wrote (version, operation, rows) and
every table version it read, so a run, a training set or a score can be traced and rebuilt.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.storage import storage_for

log = logging.getLogger(__name__)
LAYERS = list(tables.LAYERS)



def lake_tables(spark: SparkSession, settings: Settings) -> list[tuple[str, str]]:
    """(layer, name) of every Delta table in the lake."""
    storage = storage_for(settings)
    found = []
    for layer in LAYERS:
        try:
            entries = storage.list_dir(layer)
        except (FileNotFoundError, OSError, LakehouseError):
            continue
        for name, is_dir, _ in entries:
            if is_dir and storage.exists(f"{layer}/{name}/_delta_log"):
                found.append((layer, name))
    return found


def _uri(settings: Settings, table: str) -> str:
    layer, _, name = table.partition(".")
    if not name or layer not in LAYERS:
        raise LakehouseError(f"table must be <layer>.<name> with layer in {LAYERS}, got {table!r}")
    return tables.Table(layer, name).uri(settings)


def _commit(version: int, timestamp: str, operation: str, user_metadata: str | None, metrics: dict | None) -> dict:
    """One history entry from a commit's ``commitInfo`` (as Delta's history or its log file has it)."""
    meta = {}
    if user_metadata:
        try:
            meta = json.loads(user_metadata)
        except ValueError:
            meta = {"note": user_metadata}
    m = metrics or {}
    return {"version": version, "timestamp": timestamp, "operation": operation,
            "run_id": meta.get("run_id"), "job": meta.get("job"), "run_date": meta.get("run_date"),
            "rows_written": int(m.get("numOutputRows", 0) or 0),
            "rows_deleted": int(m.get("numDeletedRows", 0) or 0) + int(m.get("numTargetRowsDeleted", 0) or 0),
            "rows_updated": int(m.get("numTargetRowsUpdated", 0) or 0),
            "files_added": int(m.get("numFiles", m.get("numAddedFiles", 0)) or 0),
            "files_removed": int(m.get("numRemovedFiles", 0) or 0)}


def history(spark: SparkSession, settings: Settings, table: str, limit: int = 20) -> list[dict]:
    from delta.tables import DeltaTable

    uri = _uri(settings, table)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"{table}: no Delta table at {uri}")
    return [_commit(r["version"], str(r["timestamp"]), r["operation"], r["userMetadata"], r["operationMetrics"])
            for r in DeltaTable.forPath(spark, uri).history(limit).collect()]


def diff(spark: SparkSession, settings: Settings, table: str, v1: int, v2: int,
         key: list[str] | None = None) -> dict:
    """Rows added, removed and changed between two versions (changed needs a key; run metadata ignored)."""
    uri = _uri(settings, table)
    a, b = delta_io.read(spark, uri, v1), delta_io.read(spark, uri, v2)
    cols = [c for c in b.columns if c in a.columns and c not in ("_run_id", "_ingested_at")]
    a, b = a.select(*cols), b.select(*cols)
    if key:
        missing = set(key) - set(cols)
        if missing:
            raise LakehouseError(f"{table}: key column(s) {sorted(missing)} not in the table")
        ka, kb = a.select(*key).distinct(), b.select(*key).distinct()
        added = kb.subtract(ka).count()
        removed = ka.subtract(kb).count()
        changed = b.subtract(a).join(ka, key, "left_semi").count()
        return {"table": table, "from": v1, "to": v2, "key": key, "added": added, "removed": removed,
                "changed": changed}
    return {"table": table, "from": v1, "to": v2, "added": b.exceptAll(a).count(), "removed": a.exceptAll(b).count()}


def restore(spark: SparkSession, settings: Settings, table: str, version: int) -> dict:
    from delta.tables import DeltaTable

    uri = _uri(settings, table)
    before = delta_io.latest_version(spark, uri)
    if version > before:
        raise LakehouseError(f"{table}: version {version} does not exist (latest is {before})")
    if version == before:  # Delta commits nothing and returns no metrics row
        return {"table": table, "restored_to": version, "previous": before, "new_version": before}
    metrics = DeltaTable.forPath(spark, uri).restoreToVersion(version).first().asDict()
    log.warning("%s restored to version %d (was %d); new version %d", table, version, before,
                delta_io.latest_version(spark, uri))
    return {"table": table, "restored_to": version, "previous": before,
            "new_version": delta_io.latest_version(spark, uri), **{k: int(v or 0) for k, v in metrics.items()}}


def _commit_time(spark: SparkSession, uri: str, version: int) -> dt.datetime | None:
    """When ``version`` of the table at ``uri`` was committed (None if its log entry is gone)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, uri).history().where(F.col("version") == version).select("timestamp").first()
    return row[0] if row else None


def _file_bytes(spark: SparkSession, paths: list[str]) -> int:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    total = 0
    for p in paths:
        path = jvm.org.apache.hadoop.fs.Path(p)
        try:
            total += path.getFileSystem(conf).getFileStatus(path).getLen()
        except Exception:  # noqa: BLE001 - a file gone meanwhile counts nothing
            continue
    return total


def vacuum(spark: SparkSession, settings: Settings, table: str, dry_run: bool = True,
           pins: list[dict] | None = None, now: dt.datetime | None = None) -> dict:
    """Delete files no version within ``retention.deleted_file_retention_hours`` needs (time travel ends
    there), except those the table versions in ``pins`` need (registered models' training sets:
    ``ml.lineage.model_pins``): the retention is stretched back to the oldest pinned version's commit,
    and the log kept as long, so those versions stay readable. The dry run says which model versions
    pin what and how many files and bytes that keeps."""
    from delta.tables import DeltaTable

    uri = _uri(settings, table)
    hours = settings.retention.deleted_file_retention_hours
    log_days = settings.retention.log_retention_days
    out: dict = {"table": table, "retain_hours": hours}
    pins = [p for p in (pins or []) if p["table_version"] <= (delta_io.latest_version(spark, uri) or 0)]
    keep_hours = hours
    if pins:
        oldest = min(p["table_version"] for p in pins)
        committed = _commit_time(spark, uri, oldest)
        if committed is not None:
            now = now or dt.datetime.now()  # the clock decides what retention keeps, never what data says
            age_hours = max(0, int((now - committed).total_seconds() // 3600) + 1)
            keep_hours = max(hours, age_hours)
            log_days = max(log_days, age_hours // 24 + 1)
        out["pinned_by"] = [f"{p['model']} v{p['version']} -> v{p['table_version']}" for p in pins]
        out["retain_hours"] = keep_hours
    spark.sql(f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES ("
              f"'delta.logRetentionDuration' = 'interval {log_days} days', "
              f"'delta.deletedFileRetentionDuration' = 'interval {hours} hours')")
    if keep_hours < 168 or hours < 168:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    if dry_run:
        would = [r[0] for r in spark.sql(f"VACUUM delta.`{uri}` RETAIN {keep_hours} HOURS DRY RUN").collect()]
        out["would_delete_files"] = len(would)
        if pins and keep_hours != hours:
            unpinned = {r[0] for r in spark.sql(f"VACUUM delta.`{uri}` RETAIN {hours} HOURS DRY RUN").collect()}
            kept = sorted(unpinned - set(would))
            out.update(kept_for_models_files=len(kept), kept_for_models_bytes=_file_bytes(spark, kept))
        return out
    DeltaTable.forPath(spark, uri).vacuum(keep_hours)
    out["vacuumed"] = True
    return out


# ---- run ledger ----------------------------------------------------------------------------------

def record_run(spark: SparkSession, settings: Settings, run_id: str, job: str, run_date: str,
               reads: dict[str, int] | None = None, status: str = "success", seconds: float = 0.0) -> int:
    """Append the run's reads and writes to ``ops/run_ledger``; returns the number of tables written."""
    rows = []
    for table, version in sorted((reads or {}).items()):
        rows.append((run_id, job, run_date, status, float(seconds), table, "read", int(version), None, None, None))
    # every table's newest commits, read from the log files: Delta's history would load each table's
    # snapshot first, a Spark job per table in a job's new JVM (4-9 s per job over a test lake)
    for layer, name in lake_tables(spark, settings):
        if (layer, name) == (tables.RUN_LEDGER.layer, tables.RUN_LEDGER.name):
            continue
        for version, info in delta_io.commits(spark, tables.Table(layer, name).uri(settings), limit=8):
            h = _commit(version, str(info.get("timestamp")), info.get("operation"), info.get("userMetadata"),
                        info.get("operationMetrics"))
            if h["run_id"] == run_id:
                summary = json.dumps({k: h[k] for k in ("rows_deleted", "rows_updated", "files_added",
                                                        "files_removed")})
                rows.append((run_id, job, run_date, status, float(seconds), f"{layer}.{name}", "write",
                             h["version"], h["operation"], h["rows_written"], summary))
    if not rows:
        return 0
    schema = ("run_id string, job string, run_date string, status string, seconds double, `table` string, "
              "role string, version long, operation string, rows long, change_summary string")
    df = spark.createDataFrame(rows, schema).withColumn("run_date", F.col("run_date").cast("date")) \
        .withColumn("recorded_at", F.current_timestamp())
    delta_io.append(df, tables.RUN_LEDGER.uri(settings), delta_io.commit_metadata(run_id, "ledger", run_date))
    return sum(1 for r in rows if r[6] == "write")


def ledger(spark: SparkSession, settings: Settings, run_id: str | None = None) -> DataFrame:
    uri = tables.RUN_LEDGER.uri(settings)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"no run ledger yet at {uri}")
    df = delta_io.read(spark, uri)
    return df.where(F.col("run_id") == run_id) if run_id else df
