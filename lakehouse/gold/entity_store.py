"""The entities' stored state: reading ``silver.<table>_history`` and the monthly checkpoints
``gold.<table>_state_checkpoints``, and writing those checkpoints (what they are and why:
``gold.entities``).

A checkpoint carries a fingerprint of the history files it was built from (those of partitions up to
its month's first day M) as a second partition value, ``_covers``, so whether a current one is stored
is answered from the two tables' file lists in their Delta logs (no data file is read). A reader uses
it only while the history still holds exactly those files; after a re-run of an old date or an
erasure rewrote one of them it falls back to the whole history (same rows, slower) and the next gold
run rebuilds the checkpoint. Below ``gold.entity_checkpoint_min_mb`` of history none is built or
read: the whole history is then cheaper than this bookkeeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.gold.entities import (
    CHECKPOINT_COLUMNS,
    ENTITIES,
    checkpoint_day,
    checkpoint_state,
    date_lit,
    latest_subscription,
    state_as_of,
)

log = logging.getLogger(__name__)

_HISTORY_FILE = re.compile(r"_ingest_date=(\d{4}-\d{2}-\d{2})/([^/]+)$")
_CHECKPOINT_FILE = re.compile(r"checkpoint_date=(\d{4}-\d{2}-\d{2})/_covers=([0-9a-f]+)/[^/]+$")
_file_lists: dict[str, tuple[tuple, list[str]]] = {}  # table -> (its version's key, its data files) (_files)


def history_uri(spark: SparkSession, settings: Settings, table: str) -> str:
    uri = tables.silver_history(table).uri(settings)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"silver.{table}_history does not exist at {uri}: run silver for the dates first")
    return uri


def _files(spark: SparkSession, uri: str) -> list[str]:
    """The data files of an existing table's current version. Listing them is a Spark job over the Delta
    state, so each version's list is kept for the process: a gold date asks for each table several
    times. Only the newest version's list is kept per table (a long ``lakehouse run`` writes a new
    version every date). A version is known by its number and its commit's stamp (a table deleted and
    made anew at the same place numbers its versions from 0 again); the list is read at that version."""
    version, info = delta_io.last_commit(spark, uri)
    key = (version, info.get("timestamp"), info.get("txnId"))
    kept = _file_lists.get(uri)
    if kept is None or kept[0] != key:
        kept = _file_lists[uri] = (key, delta_io.read(spark, uri, version).inputFiles())
    return kept[1]


def forget_file_lists() -> None:
    """Drop the file lists ``_files`` keeps (benchmarks: to time a read as a new process makes it)."""
    _file_lists.clear()


def covers(spark: SparkSession, history: str, through: dt.date) -> str | None:
    """Fingerprint of the history's data files in ``_ingest_date`` partitions up to ``through`` (from the
    Delta log's file list, no data file read); None when there are none."""
    found = sorted(f"{m.group(1)}/{m.group(2)}" for m in map(_HISTORY_FILE.search, _files(spark, history))
                   if m and m.group(1) <= through.isoformat())
    return hashlib.sha256("\n".join(found).encode()).hexdigest()[:32] if found else None


def _stored(spark: SparkSession, uri: str, m: dt.date) -> set[str]:
    """Fingerprints of the checkpoints of ``m`` the table holds (from its Delta log's file list)."""
    if not delta_io.is_delta(spark, uri):
        return set()
    return {g.group(2) for g in map(_CHECKPOINT_FILE.search, _files(spark, uri)) if g and g.group(1) == m.isoformat()}


def _checkpoint(spark: SparkSession, settings: Settings, table: str, m: dt.date, history: str) -> DataFrame | None:
    """The stored state of ``table`` as of ``m`` if it was built from the history files there are now; else None."""
    current = covers(spark, history, m)
    if current is None:
        return None  # nothing had arrived by m: the history after it is all there is
    target = tables.entity_checkpoints(table)
    stored = _stored(spark, target.uri(settings), m)
    if current not in stored:
        if stored:
            log.warning("%s %s no longer matches silver.%s_history (an old date was re-run or erased): "
                        "reading the whole history until a gold run rebuilds it", target.qualified, m, table)
        return None
    return (delta_io.read(spark, target.uri(settings))
            .where((F.col("checkpoint_date") == date_lit(m)) & (F.col("_covers") == current))
            .drop(*CHECKPOINT_COLUMNS))


def checkpointed(spark: SparkSession, settings: Settings, history: str) -> bool:
    """Whether an entity's history is big enough (``gold.entity_checkpoint_min_mb``) for checkpoints:
    below it the whole history is read (cheaper than a checkpoint's bookkeeping)."""
    size = delta_io.table_bytes(spark, history)
    return size is not None and size >= settings.gold.entity_checkpoint_min_mb * 2 ** 20


def read_state_as_of(spark: SparkSession, settings: Settings, table: str, day: dt.date,
                     known_on: dt.date | None = None) -> DataFrame:
    """``entities.state_as_of`` over the stored history, from the month's checkpoint when a current
    one is stored."""
    known_on = known_on or day
    uri = history_uri(spark, settings, table)
    m = checkpoint_day(day)
    stored = _checkpoint(spark, settings, table, m, uri) if known_on >= m and checkpointed(spark, settings, uri) \
        else None
    return state_as_of(delta_io.read(spark, uri), table, day, known_on, stored)


def read_subscription_state(spark: SparkSession, settings: Settings, day: dt.date,
                            known_on: dt.date | None = None) -> DataFrame:
    """One row per customer: the customer's most recent subscription as of ``day``."""
    return latest_subscription(read_state_as_of(spark, settings, "subscriptions", day, known_on))


def write_checkpoints(spark: SparkSession, settings: Settings, days: list[dt.date], metadata: str,
                      entities: tuple[str, ...] = tuple(ENTITIES)) -> dict[str, int]:
    """Store the checkpoint each of ``days`` starts from, for each of ``entities`` whose history is
    ``checkpointed``, unless a current one is stored (one pass over the entity's history when it is
    built). Returns rows written per ``table@M``."""
    written = {}
    for table in entities:
        target = tables.entity_checkpoints(table)
        uri = target.uri(settings)
        h_uri = history_uri(spark, settings, table)
        if not checkpointed(spark, settings, h_uri):
            continue
        for m in sorted({checkpoint_day(d) for d in days}):
            current = covers(spark, h_uri, m)
            if current is None or current in _stored(spark, uri, m):
                continue
            state = checkpoint_state(delta_io.read(spark, h_uri), table, m)
            frame = state.select("*", date_lit(m).alias("checkpoint_date"), F.lit(current).alias("_covers")).cache()
            try:
                n = frame.count()
                delta_io.replace_partition(frame, uri, target.partition, m.isoformat(), metadata, merge_schema=True,
                                           partition_by=target.partition_by)
            finally:
                frame.unpersist()
            written[f"{table}@{m.isoformat()}"] = n
            log.info("%s checkpoint_date=%s: %d rows, one pass over silver.%s_history", target.qualified, m, n, table)
    return written
