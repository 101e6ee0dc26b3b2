"""Table maintenance on its own schedule: compaction of small files (Delta's ``OPTIMIZE``).

Daily runs write each date as one or a few files per partition, but tables without a date partition
(the ops tables, silver's current-state tables, the quarantine) gain files with every run: a table
appended to daily holds a file per run after a year. Reads of such a table open every file.
``compact`` rewrites, per table, only the partitions holding at least ``maintenance.compact_min_files``
files (a partitioned table) or the whole table when it holds that many (an unpartitioned one), as one
``OPTIMIZE`` commit. That commit changes no row (Delta marks it ``dataChange=false``): table checksums,
row counts and the versions models were trained on stay what they were; the files it replaced remain
for time travel until ``lakehouse table vacuum``.

``maintenance.zorder`` may name columns to Z-order a table by (its rows are then clustered by them, so
reads filtering on them skip files); it rewrites every file of the partitions it covers, and is empty by
default: no read of the pipeline filters a table on a column other than its partition.

It runs from ``lakehouse table optimize`` and ``jobs/maintenance.py`` (the Airflow DAG
``churn_maintenance``, weekly, away from the daily run's hours: an ``OPTIMIZE`` that meets a concurrent
write of the same partition is retried, see ``delta_io.retry_on_conflict``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from urllib.parse import unquote

from lakehouse import delta_io
from lakehouse.config import Settings

log = logging.getLogger(__name__)


def file_layout(spark, uri: str) -> dict:
    """The active files of a Delta table's latest version, grouped by partition: files, partitions,
    partition columns, bytes, and the file count per partition (``{(col, value), ...}: n``)."""
    from delta.tables import DeltaTable

    detail = DeltaTable.forPath(spark, uri).detail().first()
    columns = list(detail["partitionColumns"])
    per_partition: dict[tuple, int] = {}
    for path in spark.read.format("delta").load(uri).inputFiles():
        folder = os.path.dirname(unquote(path))
        parts = folder.split("/")[-len(columns):] if columns else []
        key = tuple(tuple(p.split("=", 1)) for p in parts)
        per_partition[key] = per_partition.get(key, 0) + 1
    files = int(detail["numFiles"])
    return {"files": files, "partitions": len(per_partition), "partition_columns": columns,
            "bytes": int(detail["sizeInBytes"]), "per_partition": per_partition,
            "files_per_partition": round(files / len(per_partition), 2) if per_partition else 0.0}


def _predicate(keys: list[tuple]) -> str:
    """A WHERE clause selecting the partitions ``keys`` (tuples of (column, value))."""
    def one(key):
        return "(" + " AND ".join(f"`{c}` = '{v}'" for c, v in key) + ")"

    return " OR ".join(one(k) for k in keys)


def compact(spark, settings: Settings, table: str, run_date: dt.date, run_id: str = "", dry_run: bool = False,
            min_files: int | None = None) -> dict:
    """Compact ``table`` (``<layer>.<name>``): its partitions of ``min_files`` files or more become one
    file each (up to Delta's target file size). Idempotent: a second run finds nothing to do."""
    from lakehouse.versioning import _uri

    uri = _uri(settings, table)
    cfg = settings.maintenance
    min_files = min_files or cfg.compact_min_files
    before = file_layout(spark, uri)
    crowded = sorted(k for k, n in before["per_partition"].items() if n >= min_files)
    zorder = cfg.zorder.get(table, [])
    out = {"table": table, "files_before": before["files"], "partitions": before["partitions"],
           "partitions_to_compact": len(crowded),
           "files_in_them": sum(before["per_partition"][k] for k in crowded)}
    if not crowded or dry_run:
        return out
    t = time.perf_counter()
    sql = f"OPTIMIZE delta.`{uri}`"
    if before["partition_columns"] and len(crowded) < before["partitions"]:
        sql += f" WHERE {_predicate(crowded)}"
    if zorder:
        sql += " ZORDER BY (" + ", ".join(f"`{c}`" for c in zorder) + ")"
    metadata = delta_io.commit_metadata(run_id, "maintenance", run_date.isoformat())

    def optimize():
        spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", metadata)
        try:
            spark.sql(sql).collect()
        finally:
            spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")

    delta_io.retry_on_conflict(optimize, uri, "compaction")
    after = file_layout(spark, uri)
    out.update(files_after=after["files"], version=delta_io.latest_version(spark, uri),
               seconds=round(time.perf_counter() - t, 1))
    log.info("%s: %d files in %d partition(s) compacted to %d (%d files in the table now) in %.1fs", table,
             out["files_in_them"], len(crowded), after["files"] - (before["files"] - out["files_in_them"]),
             after["files"], out["seconds"])
    return out


def compact_lake(spark, settings: Settings, run_date: dt.date, run_id: str = "", tables: list[str] | None = None,
                 dry_run: bool = False, min_files: int | None = None) -> dict:
    """``compact`` every table of the lake (or ``tables``); returns per table what it did, and totals."""
    from lakehouse.versioning import lake_tables

    names = tables or [f"{layer}.{name}" for layer, name in lake_tables(spark, settings)]
    results = [compact(spark, settings, name, run_date, run_id, dry_run, min_files) for name in names]
    done = [r for r in results if "files_after" in r]
    summary = {"run_date": run_date.isoformat(), "run_id": run_id, "tables": len(results),
               "tables_compacted": len(done), "dry_run": dry_run,
               "files_before": sum(r["files_before"] for r in results),
               "files_after": sum(r.get("files_after", r["files_before"]) for r in results),
               "results": results}
    log.info("maintenance %s: %d of %d tables compacted; files %d -> %d", run_date, len(done), len(results),
             summary["files_before"], summary["files_after"])
    return summary
