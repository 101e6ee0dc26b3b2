"""Point-in-time state of the slowly changing entities (customers, subscriptions, tickets): the
computations, from frames to frames (the reads and the checkpoint store: ``gold.entity_store``).

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

Which checkpoints are current, and when none is used: ``gold.entity_store``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# the entities gold reads as of a date: their key and the column that orders their versions
ENTITIES = {"customers": ("customer_id", "updated_at"),
            "subscriptions": ("subscription_id", "updated_at"),
            "support_tickets": ("ticket_id", "updated_at")}
CHECKPOINT_COLUMNS = ("checkpoint_date", "_covers")


def end_of(day: dt.date):
    """The first instant after ``day`` (timestamps are UTC)."""
    return F.lit((day + dt.timedelta(days=1)).isoformat()).cast("timestamp")


def date_lit(day: dt.date):
    return F.lit(day.isoformat()).cast("date")


def day_col(day: "dt.date | Column") -> Column:
    """``day`` as a date column: a literal for one date, or the column itself (one date per row: the
    history load computes many dates in one pass, each row carrying the date it belongs to)."""
    return day if isinstance(day, Column) else date_lit(day)


def checkpoint_day(day: dt.date) -> dt.date:
    """The checkpoint a state as of ``day`` starts from: the first day of its month."""
    return day.replace(day=1)


def known_by(history: DataFrame, known_on: dt.date) -> DataFrame:
    """The history rows that had arrived by ``known_on``."""
    return history.where(F.col("_ingest_date") <= date_lit(known_on))


def latest(rows: DataFrame, table: str, by: tuple[str, ...] = ()) -> DataFrame:
    """The newest version per key (and ``by``) of ``table``'s rows (ties: the later arrival)."""
    key, order_by = ENTITIES[table]
    w = Window.partitionBy(*by, key).orderBy(F.col(order_by).desc(), F.col("_ingest_date").desc())
    return rows.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def checkpoint_state(history: DataFrame, table: str, m: dt.date) -> DataFrame:
    """The state of ``table`` as of ``m``, as known on ``m``: what a checkpoint of ``m`` stores."""
    return latest(known_by(history, m).where(F.col(ENTITIES[table][1]) < end_of(m)), table)


def state_as_of(history: DataFrame, table: str, day: dt.date, known_on: dt.date | None = None,
                checkpoint: DataFrame | None = None) -> DataFrame:
    """Latest version per key of ``table`` (one of ``ENTITIES``) stamped before the end of ``day``, as
    known on ``known_on`` (default: ``day``), from its silver ``history``.

    ``checkpoint``, when given, is the state as of ``checkpoint_day(day)`` as known on that day (a
    caller passes one only when ``known_on`` is on or after it): the history rows before it are then
    replaced by it, with the same result."""
    known_on = known_on or day
    order_by = F.col(ENTITIES[table][1])
    rows = known_by(history, known_on).where(order_by < end_of(day))
    if checkpoint is not None:
        m = checkpoint_day(day)
        ingest = F.col("_ingest_date")
        rows = (checkpoint.unionByName(rows.where(ingest > date_lit(m)), allowMissingColumns=True)
                .unionByName(rows.where(ingest <= date_lit(m)).where(order_by >= end_of(m)), allowMissingColumns=True))
    return latest(rows, table)


def states_as_of(history: DataFrame, table: str, days: DataFrame) -> DataFrame:
    """``state_as_of`` for many dates in one pass: ``days`` holds ``as_of`` and ``known_on`` (and any
    other columns, passed through); per row of ``days``, the latest version per key stamped before the
    end of ``as_of`` among the rows that had arrived by ``known_on``. The definition, for any dates;
    the history load's dates move together and take ``states_over``."""
    order_by = F.col(ENTITIES[table][1])
    rows = history.join(F.broadcast(days), (F.col("_ingest_date") <= F.col("known_on"))
                        & (order_by < F.date_add(F.col("as_of"), 1).cast("timestamp")))
    return latest(rows, table, by=tuple(days.columns))


def states_over(history: DataFrame, table: str, days: DataFrame, as_of_shift: int = 0,
                known_shift: int = 0) -> DataFrame:
    """``states_as_of`` for every ``snapshot_date`` D of ``days``, as of D + ``as_of_shift`` days, as
    known on D + ``known_shift``: the same rows (``history``'s columns and ``snapshot_date``), without
    joining every version to every date and ranking there.

    With both dates moving with D, a version counts for D from the first D on which it has arrived
    (``_ingest_date`` <= D + known_shift) and is stamped before the end of the as-of date (its
    stamp's date <= D + as_of_shift), and for every D after. So per key the state changes only on those
    dates: the latest version among those counting by then (a running maximum of (stamp, arrival), the
    order ``latest`` ranks by) holds from one such date until the next, and only those intervals are
    spread over the dates."""
    key, stamp = ENTITIES[table]
    d = F.col("snapshot_date")
    counts_from = F.greatest(F.date_sub(F.col("_ingest_date"), known_shift),
                             F.date_sub(F.to_date(F.col(stamp)), as_of_shift))
    versions = history.where(F.col(stamp).isNotNull())
    so_far = Window.partitionBy("_key").orderBy("_from").rangeBetween(Window.unboundedPreceding, Window.currentRow)
    best = F.max(F.struct(F.col("_stamp").alias("stamp"), F.col("_arrived").alias("arrived"))).over(so_far)
    changes = (versions.select(F.col(key).alias("_key"), counts_from.alias("_from"),
                               F.col(stamp).alias("_stamp"), F.col("_ingest_date").alias("_arrived"))
               .select("_key", "_from", best.alias("_best")).distinct()
               .withColumn("_until", F.lead("_from").over(Window.partitionBy("_key").orderBy("_from"))))
    held = versions.join(changes, F.col(key).eqNullSafe(F.col("_key")) & (F.col(stamp) == F.col("_best.stamp"))
                         & (F.col("_ingest_date") == F.col("_best.arrived")))
    spread = held.join(F.broadcast(days), (d >= F.col("_from")) & (F.col("_until").isNull() | (d < F.col("_until"))))
    return spread.select(*history.columns, *[c for c in days.columns if c not in history.columns])


def latest_subscription(subscriptions: DataFrame, by: tuple[str, ...] = ()) -> DataFrame:
    """One row per customer (and ``by``): the customer's most recent subscription among ``subscriptions``."""
    w = Window.partitionBy(*by, "customer_id").orderBy(F.col("start_date").desc(), F.col("subscription_id").desc())
    return subscriptions.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def cancelled_on() -> "F.Column":
    """The date a subscription ended: ``cancel_date``, or the update's date for a cancelled row without one."""
    return F.coalesce(F.col("cancel_date"),
                      F.when(F.col("status") == "cancelled", F.to_date("updated_at")))


def active_at(subs: DataFrame, day: "dt.date | Column") -> DataFrame:
    """Subscriptions running on ``day``: started by then and not cancelled on or before it."""
    d = day_col(day)
    ended = cancelled_on()
    return subs.where((F.col("start_date") <= d) & (ended.isNull() | (ended > d)))
