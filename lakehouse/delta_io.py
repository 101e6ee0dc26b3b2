"""The one I/O layer for Delta tables: partition replacement, appends, versions, checksums.

Every write stamps its commit with run metadata (``userMetadata``: run id, job, logical date), so a
table's history says which run wrote each version.
"""

from __future__ import annotations

import json
import logging
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.errors import LakehouseError

log = logging.getLogger(__name__)


def is_delta(spark: SparkSession, uri: str) -> bool:
    """Whether ``uri`` holds a Delta table, as of now.

    ``DeltaTable.isDeltaTable`` answers from the session's cached view of the log: once it has seen a
    path without commits it keeps saying False after another process commits there (found by the
    crash test). A negative answer is therefore re-checked by resolving the table, which refreshes it.
    """
    from delta.tables import DeltaTable

    if DeltaTable.isDeltaTable(spark, uri):
        return True
    try:
        spark.read.format("delta").load(uri)
    except Exception:  # noqa: BLE001 - AnalysisException: no such path, or not a Delta table
        return False
    return True


def commit_metadata(run_id: str, job: str, run_date: str, **extra) -> str:
    return json.dumps({"run_id": run_id, "job": job, "run_date": run_date, **extra}, sort_keys=True)


CONFLICT_ATTEMPTS = 5


def _conflict_types() -> tuple[type, ...]:
    from delta import exceptions as dx

    return (dx.DeltaConcurrentModificationException, dx.ConcurrentWriteException, dx.MetadataChangedException,
            dx.ProtocolChangedException, dx.ConcurrentAppendException, dx.ConcurrentDeleteReadException,
            dx.ConcurrentDeleteDeleteException, dx.ConcurrentTransactionException)


def retry_on_conflict(write, uri: str, what: str, attempts: int = CONFLICT_ATTEMPTS) -> int:
    """Run an idempotent ``write()``; when another writer committed to the table first (Delta's
    optimistic concurrency), run it again against the new version. Returns the attempts used.

    Only for writes that replace what they cover (partition or predicate replacement): the retry
    then ends with exactly this writer's rows for that slice, never a mix or duplicates.
    """
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

    retrying = Retrying(retry=retry_if_exception_type(_conflict_types()), stop=stop_after_attempt(attempts),
                        wait=wait_random_exponential(multiplier=0.2, max=5), reraise=False,
                        before_sleep=lambda rs: log.warning(
                            "concurrent write to %s (%s) conflicted on attempt %d (%s); retrying", uri, what,
                            rs.attempt_number, type(rs.outcome.exception()).__name__))
    try:
        for attempt in retrying:
            with attempt:
                write()
        return retrying.statistics.get("attempt_number", 1)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise LakehouseError(f"concurrent writes to {uri} ({what}) kept conflicting after {attempts} attempts: "
                             f"{type(cause).__name__}: {first}") from cause


def replace_partition(df: DataFrame, uri: str, partition_col: str, value: str, metadata: str,
                      merge_schema: bool = False, partition_by: Iterable[str] = ()) -> int:
    """Atomically replace one partition (``partition_col = value``) of a Delta table, creating it if new
    (partitioned by ``partition_col``, or by ``partition_by`` when given: it starts with ``partition_col``).

    A conflict with a concurrent writer is retried (see ``retry_on_conflict``); returns the attempts."""
    writer = (df.write.format("delta").mode("overwrite").option("userMetadata", metadata)
              .option("replaceWhere", f"{partition_col} = '{value}'").partitionBy(*(partition_by or [partition_col])))
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    return retry_on_conflict(lambda: writer.save(uri), uri, f"{partition_col} = {value}")


def replace_where(df: DataFrame, uri: str, where: str, metadata: str, partition_by: Iterable[str] = (),
                  merge_schema: bool = False) -> int:
    """Atomically replace the rows matching ``where`` (creating the table on first write, partitioned
    by ``partition_by``; with ``merge_schema``, new columns of ``df`` are added to the table)."""
    def write():
        writer = df.write.format("delta").option("userMetadata", metadata).partitionBy(*partition_by)
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if not is_delta(df.sparkSession, uri):
            try:
                writer.save(uri)  # creates the table; refused if another writer created it meanwhile
                return
            except Exception as exc:  # noqa: BLE001 - AnalysisException DELTA_PATH_EXISTS: replace below
                if "already exist" not in str(exc):
                    raise
        writer.mode("overwrite").option("replaceWhere", where).save(uri)

    return retry_on_conflict(write, uri, where)


def merge_latest(spark: SparkSession, uri: str, rows: DataFrame, key: list[str], order_by: str, metadata: str,
                 ignore: Iterable[str] = ("_run_id",)) -> bool:
    """Upsert ``rows`` (one per ``key``) on ``key``; a stored row is replaced only by a newer
    ``order_by``, or by an equal one that differs in some column other than ``ignore``. Returns
    whether it merged anything.

    The rows that change nothing (older than, or the same as, what is stored) are dropped before the
    MERGE: Delta rewrites every file holding a key the source matches, whether or not the update's
    condition holds (delta-io/delta#1812), so a re-run would rewrite files unchanged and add a table
    version. When no row is left there is no MERGE and no commit (and False is returned).
    """
    from delta.tables import DeltaTable

    if not is_delta(spark, uri):
        rows.limit(0).write.format("delta").save(uri)
    o = f"`{order_by}`"
    same = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in rows.columns if c not in set(ignore))
    newer = f"s.{o} > t.{o} OR (t.{o} IS NULL AND s.{o} IS NOT NULL) OR ((s.{o} <=> t.{o}) AND NOT ({same}))"
    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in key)
    table = DeltaTable.forPath(spark, uri)
    stored = table.toDF().alias("t")
    changes = (rows.alias("s").join(stored, F.expr(cond), "left")
               .where(F.expr(" AND ".join(f"t.`{k}` IS NULL" for k in key)) | F.expr(newer)).select("s.*"))
    if changes.isEmpty():
        return False
    spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", metadata)
    try:  # every row left inserts or updates (the condition stays, against a concurrent writer)
        (table.alias("t").merge(changes.alias("s"), cond)
         .whenMatchedUpdateAll(condition=newer).whenNotMatchedInsertAll().execute())
    finally:
        spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
    return True


def merge_insert_only(spark: SparkSession, uri: str, rows: DataFrame, key: list[str], metadata: str,
                      target_where: str | None = None) -> int | None:
    """Insert the rows whose ``key`` is not in the table yet; stored rows are never rewritten.

    ``target_where``: a condition on the stored rows (alias ``t``) that every match must meet, added to
    the MERGE condition, where Delta also uses it to skip files by their statistics.
    Returns the rows inserted (Delta's MERGE metrics), so a caller can count re-delivered rows."""
    from delta.tables import DeltaTable

    if not is_delta(spark, uri):
        rows.limit(0).write.format("delta").save(uri)
    spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", metadata)
    try:
        cond = " AND ".join([f"t.`{k}` = s.`{k}`" for k in key] + ([f"({target_where})"] if target_where else []))
        table = DeltaTable.forPath(spark, uri)
        before, _ = last_commit(spark, uri)
        table.alias("t").merge(rows.alias("s"), cond).whenNotMatchedInsertAll().execute()
        version, info = last_commit(spark, uri)
    finally:
        spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
    if version == before:
        return 0  # Delta made no commit: every row was stored already
    if info.get("operation") != "MERGE":
        return None
    inserted = (info.get("operationMetrics") or {}).get("numTargetRowsInserted")
    return int(inserted) if inserted is not None else None


def append(df: DataFrame, uri: str, metadata: str, partition_by: Iterable[str] = ()) -> None:
    """Append rows (creating the table on first write). A conflicting commit (two jobs creating the
    table at once) committed nothing of ours, so the append is retried."""
    writer = df.write.format("delta").mode("append").option("userMetadata", metadata).option("mergeSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    retry_on_conflict(lambda: writer.save(uri), uri, "append")


def holds_exactly(spark: SparkSession, uri: str, where: str, rows: DataFrame, n: int,
                  exclude: Iterable[str] = ("_run_id",)) -> bool:
    """Whether the table's rows matching ``where`` are ``rows`` (``n`` of them), ignoring ``exclude``:
    a pruned count and checksum of the stored slice, and of ``rows`` only when the counts agree."""
    if not is_delta(spark, uri):
        return False
    stored = content_checksum(read(spark, uri).where(where), exclude)
    return stored[0] == n and (n == 0 or stored == content_checksum(rows, exclude))


def has_rows(spark: SparkSession, uri: str, where: str) -> bool:
    """Whether the (existing) table holds a row matching ``where``: one small pruned read, no commit."""
    return read(spark, uri).where(where).limit(1).count() > 0


def commits(spark: SparkSession, uri: str, limit: int = 1) -> list[tuple[int, dict]]:
    """(version, commitInfo) of the table's ``limit`` newest commits, newest first, read from its
    ``_delta_log``.

    A commit is the file ``<version>.json`` (Delta's protocol), so this is one listing and one small
    read per commit through Hadoop's file system (local or HDFS): ~0.01 s each, where
    ``DeltaTable.history`` took ~0.2 s in a warm JVM and, in a job's new JVM, first loads the table's
    snapshot (a Spark job). ``operationMetrics`` values are strings, as in ``history()``.
    """
    names, read = _delta_log(spark, uri)
    return [(v, next((a["commitInfo"] for a in map(json.loads, read(f"{v:020d}.json").splitlines())
                      if "commitInfo" in a), {}))
            for v in reversed(_versions(names, ".json")[-limit:])]


def _delta_log(spark: SparkSession, uri: str):
    """The file names in a table's ``_delta_log`` (one listing) and a reader of one of them (Hadoop's file
    system: local or HDFS)."""
    jvm = spark._jvm
    log_dir = jvm.org.apache.hadoop.fs.Path(uri.rstrip("/") + "/_delta_log")
    fs = log_dir.getFileSystem(spark._jsc.hadoopConfiguration())

    def read(name: str) -> str:
        stream = fs.open(jvm.org.apache.hadoop.fs.Path(log_dir, name))
        try:
            return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    return [status.getPath().getName() for status in fs.listStatus(log_dir)], read


def _versions(names: list[str], suffix: str) -> list[int]:
    """Versions of the ``<version><suffix>`` files among ``names``, oldest first."""
    return sorted(int(n[:-len(suffix)]) for n in names if n.endswith(suffix) and n[:-len(suffix)].isdigit())


def table_bytes(spark: SparkSession, uri: str) -> int | None:
    """Bytes of the data files of an existing table's latest version, from the checksum file Delta writes
    beside each commit (``<version>.crc``: ~0.01 s, no Spark job); None when the newest commit has none."""
    names, read = _delta_log(spark, uri)
    commits_ = _versions(names, ".json")
    if not commits_ or f"{commits_[-1]:020d}.crc" not in names:
        return None
    return json.loads(read(f"{commits_[-1]:020d}.crc")).get("tableSizeBytes")


def last_commit(spark: SparkSession, uri: str) -> tuple[int, dict]:
    """(version, commitInfo) of an existing table's newest commit (``commits``); a date asks this
    of ~25 tables."""
    found = commits(spark, uri, 1)
    if not found:
        raise LakehouseError(f"{uri}: no commit file in _delta_log")
    return found[0]


def latest_version(spark: SparkSession, uri: str) -> int | None:
    if not is_delta(spark, uri):
        return None
    return last_commit(spark, uri)[0]


def last_commit_rows(spark: SparkSession, uri: str) -> tuple[int, int | None]:
    """(version, rows written) of the table's latest commit, from Delta's operation metrics."""
    version, info = last_commit(spark, uri)
    written = (info.get("operationMetrics") or {}).get("numOutputRows")
    return version, int(written) if written is not None else None


def rows_written(spark: SparkSession, uri: str, before: int | None) -> tuple[int | None, int | None]:
    """(version, rows written) of the write just made to ``uri``, whose latest version was ``before``
    it: the rows from the commit's metrics (None if it has none). An empty write into an empty
    partition makes no commit: (``before``, 0)."""
    version, written = last_commit_rows(spark, uri)
    return (before, 0) if version == before else (version, written)


def read(spark: SparkSession, uri: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(uri)


def content_checksum(df: DataFrame, exclude: Iterable[str] = ()) -> tuple[int, str]:
    """(row count, order-insensitive checksum) over every column not excluded.

    Run-specific metadata (``_run_id``, ``_ingested_at``) is excluded by callers, so two runs that
    loaded the same data compare equal.
    """
    row = df.agg(*_checksum_columns(df, exclude)).first()
    return int(row["n"]), f"{row['s'] or 0}"


def checksums_by(df: DataFrame, column: str, exclude: Iterable[str] = ()) -> dict:
    """``content_checksum`` of each value's rows of ``column``, in one aggregation: the same
    (count, checksum) as ``content_checksum(df.where(column == value))`` for every value present."""
    rows = df.groupBy(column).agg(*_checksum_columns(df, exclude)).collect()
    return {r[column]: (int(r["n"]), f"{r['s'] or 0}") for r in rows}


def _checksum_columns(df: DataFrame, exclude: Iterable[str]) -> list:
    skip = set(exclude)
    cols = sorted(c for c in df.columns if c not in skip)
    row_hash = F.xxhash64(*[F.coalesce(F.col(c).cast("string"), F.lit("\u0000null")) for c in cols])
    return [F.count(F.lit(1)).alias("n"), F.sum(row_hash.cast("decimal(38,0)")).alias("s")]
