"""Point-in-time state of the slowly changing entities (customers, subscriptions, tickets).

Silver keeps every accepted version of these in ``silver/<table>_history`` (partitioned by
``_ingest_date``). The state *as known on date K, as of date D* is the latest version per key among
rows that had arrived by K (``_ingest_date <= K``) and whose own timestamp is before the end of D.
Both conditions matter: the first keeps a recompute of D from seeing data that arrived later (late
rows), the second keeps records stamped in the future out.

History only grows, so reading all of it every day would make each day cost more than the one
before. The gold job therefore stores a monthly checkpoint per entity,
``gold.<table>_state_checkpoints`` (partition ``checkpoint_date`` = the first day M of a month): the
state as of M, as known on M, built once from the whole history. A state as of D (M <= D <= K) is
then the latest version per key among

* the checkpoint of M (the latest of every row that arrived by M, stamped before the end of M),
* the rows that arrived after M and by K, stamped before the end of D, and
* the rows that arrived by M stamped after the end of M but before the end of D (a clock running
  ahead; Delta skips every file whose timestamps end before that, which is nearly all),

which is exactly the latest among all rows the definition above takes: the cost is the entities
plus at most a month (and the lag K - D) of changes, whatever the age of the lake.

A checkpoint carries a fingerprint of the history files it was built from (those of partitions up to
M) as a second partition value, ``_covers``, so whether a current one is stored is answered from the
two tables' file lists in their Delta logs (no data file is read). A reader uses it only while the
history still holds exactly those files; after a re-run of an old date or an erasure rewrote one of
them it falls back to the whole history (same rows, slower) and the next gold run rebuilds the
checkpoint. Below ``gold.entity_checkpoint_min_mb`` of history none is built or read: the whole
history is then cheaper than this bookkeeping (the file lists, a union of three scans per read).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse import delta_io
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.storage import table_uri

log = logging.getLogger(__name__)

# the entities gold reads as of a date: their key and the column that orders their versions
ENTITIES = {"customers": ("customer_id", "updated_at"),
            "subscriptions": ("subscription_id", "updated_at"),
            "support_tickets": ("ticket_id", "updated_at")}
CHECKPOINT_COLUMNS = ("checkpoint_date", "_covers")
_HISTORY_FILE = re.compile(r"_ingest_date=(\d{4}-\d{2}-\d{2})/([^/]+)$")
_CHECKPOINT_FILE = re.compile(r"checkpoint_date=(\d{4}-\d{2}-\d{2})/_covers=([0-9a-f]+)/[^/]+$")
_file_lists: dict[str, tuple[tuple, list[str]]] = {}  # table -> (its version's key, its data files) (_files)


def end_of(day: dt.date):
    """The first instant after ``day`` (timestamps are UTC)."""
    return F.lit((day + dt.timedelta(days=1)).isoformat()).cast("timestamp")


def _date(day: dt.date):
    return F.lit(day.isoformat()).cast("date")


def checkpoint_table(table: str) -> str:
    return f"{table}_state_checkpoints"


def checkpoint_day(day: dt.date) -> dt.date:
    """The checkpoint a state as of ``day`` starts from: the first day of its month."""
    return day.replace(day=1)


def _history_uri(spark: SparkSession, settings: Settings, table: str) -> str:
    uri = table_uri(settings, "silver", f"{table}_history")
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"silver.{table}_history does not exist at {uri}: run silver for the dates first")
    return uri


def _history(spark: SparkSession, uri: str, known_on: dt.date) -> DataFrame:
    return delta_io.read(spark, uri).where(F.col("_ingest_date") <= _date(known_on))


def _latest(rows: DataFrame, table: str) -> DataFrame:
    key, order_by = ENTITIES[table]
    w = Window.partitionBy(key).orderBy(F.col(order_by).desc(), F.col("_ingest_date").desc())
    return rows.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def _files(spark: SparkSession, uri: str) -> list[str]:
    """The data files of an existing table's current version. Listing them is a Spark job over the Delta
    state (~0.17 s), so each version's list is kept for the process: a gold date asks for each table
    several times. Only the newest version's list is kept per table (a long ``lakehouse run`` writes a
    new version every date). A version is known by its number and its commit's stamp (a table deleted
    and made anew at the same place numbers its versions from 0 again); the list is read at that version."""
    version, info = delta_io.last_commit(spark, uri)
    key = (version, info.get("timestamp"), info.get("txnId"))
    kept = _file_lists.get(uri)
    if kept is None or kept[0] != key:
        kept = _file_lists[uri] = (key, delta_io.read(spark, uri, version).inputFiles())
    return kept[1]


def forget_file_lists() -> None:
    """Drop the file lists ``_files`` keeps (benchmarks: to time a read as a new process makes it)."""
    _file_lists.clear()


def covers(spark: SparkSession, history_uri: str, through: dt.date) -> str | None:
    """Fingerprint of the history's data files in ``_ingest_date`` partitions up to ``through`` (from the
    Delta log's file list, no data file read); None when there are none."""
    found = sorted(f"{m.group(1)}/{m.group(2)}" for m in map(_HISTORY_FILE.search, _files(spark, history_uri))
                   if m and m.group(1) <= through.isoformat())
    return hashlib.sha256("\n".join(found).encode()).hexdigest()[:32] if found else None


def _stored(spark: SparkSession, uri: str, m: dt.date) -> set[str]:
    """Fingerprints of the checkpoints of ``m`` the table holds (from its Delta log's file list)."""
    if not delta_io.is_delta(spark, uri):
        return set()
    return {g.group(2) for g in map(_CHECKPOINT_FILE.search, _files(spark, uri)) if g and g.group(1) == m.isoformat()}


def _checkpoint(spark: SparkSession, settings: Settings, table: str, m: dt.date, history_uri: str) -> DataFrame | None:
    """The stored state of ``table`` as of ``m`` if it was built from the history files there are now; else None."""
    current = covers(spark, history_uri, m)
    if current is None:
        return None  # nothing had arrived by m: the history after it is all there is
    uri = table_uri(settings, "gold", checkpoint_table(table))
    stored = _stored(spark, uri, m)
    if current not in stored:
        if stored:
            log.warning("gold.%s %s no longer matches silver.%s_history (an old date was re-run or erased): "
                        "reading the whole history until a gold run rebuilds it", checkpoint_table(table), m, table)
        return None
    return (delta_io.read(spark, uri).where((F.col("checkpoint_date") == _date(m)) & (F.col("_covers") == current))
            .drop(*CHECKPOINT_COLUMNS))


def checkpointed(spark: SparkSession, settings: Settings, history_uri: str) -> bool:
    """Whether an entity's history is big enough (``gold.entity_checkpoint_min_mb``) for checkpoints:
    below it the whole history is read (cheaper than a checkpoint's bookkeeping)."""
    size = delta_io.table_bytes(spark, history_uri)
    return size is not None and size >= settings.gold.entity_checkpoint_min_mb * 2 ** 20


def state_as_of(spark: SparkSession, settings: Settings, table: str, day: dt.date,
                known_on: dt.date | None = None) -> DataFrame:
    """Latest version per key of ``table`` (one of ``ENTITIES``) stamped before the end of ``day``, as
    known on ``known_on`` (default: ``day``); from the month's checkpoint when a current one is stored."""
    known_on = known_on or day
    order_by = F.col(ENTITIES[table][1])
    uri = _history_uri(spark, settings, table)
    rows = _history(spark, uri, known_on).where(order_by < end_of(day))
    m = checkpoint_day(day)
    stored = _checkpoint(spark, settings, table, m, uri) if known_on >= m and checkpointed(spark, settings, uri) \
        else None
    if stored is not None:
        ingest = F.col("_ingest_date")
        rows = (stored.unionByName(rows.where(ingest > _date(m)), allowMissingColumns=True)
                .unionByName(rows.where(ingest <= _date(m)).where(order_by >= end_of(m)), allowMissingColumns=True))
    return _latest(rows, table)


def write_checkpoints(spark: SparkSession, settings: Settings, days: list[dt.date], metadata: str,
                      tables: tuple[str, ...] = tuple(ENTITIES)) -> dict[str, int]:
    """Store the checkpoint each of ``days`` starts from, for each entity of ``tables`` whose history is
    ``checkpointed``, unless a current one is stored (one pass over the entity's history when it is
    built). Returns rows written per ``table@M``."""
    written = {}
    for table in tables:
        uri = table_uri(settings, "gold", checkpoint_table(table))
        h_uri = _history_uri(spark, settings, table)
        if not checkpointed(spark, settings, h_uri):
            continue
        for m in sorted({checkpoint_day(d) for d in days}):
            current = covers(spark, h_uri, m)
            if current is None or current in _stored(spark, uri, m):
                continue
            state = _latest(_history(spark, h_uri, m).where(F.col(ENTITIES[table][1]) < end_of(m)), table)
            frame = state.select("*", _date(m).alias("checkpoint_date"), F.lit(current).alias("_covers")).cache()
            try:
                n = frame.count()
                delta_io.replace_partition(frame, uri, "checkpoint_date", m.isoformat(), metadata, merge_schema=True,
                                           partition_by=CHECKPOINT_COLUMNS)
            finally:
                frame.unpersist()
            written[f"{table}@{m.isoformat()}"] = n
            log.info("gold.%s checkpoint_date=%s: %d rows, one pass over silver.%s_history",
                     checkpoint_table(table), m, n, table)
    return written


def subscription_state(spark: SparkSession, settings: Settings, day: dt.date,
                       known_on: dt.date | None = None) -> DataFrame:
    """One row per customer: the customer's most recent subscription as of ``day``."""
    subs = state_as_of(spark, settings, "subscriptions", day, known_on)
    w = Window.partitionBy("customer_id").orderBy(F.col("start_date").desc(), F.col("subscription_id").desc())
    return subs.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def cancelled_on() -> "F.Column":
    """The date a subscription ended: ``cancel_date``, or the update's date for a cancelled row without one."""
    return F.coalesce(F.col("cancel_date"),
                      F.when(F.col("status") == "cancelled", F.to_date("updated_at")))


def active_at(subs: DataFrame, day: dt.date) -> DataFrame:
    """Subscriptions running on ``day``: started by then and not cancelled on or before it."""
    d = _date(day)
    ended = cancelled_on()
    return subs.where((F.col("start_date") <= d) & (ended.isNull() | (ended > d)))
