"""Point-in-time state of the slowly changing entities (customers, subscriptions, tickets).

Silver keeps every accepted version of these in ``silver/<table>_history`` (partitioned by
``_ingest_date``). The state *as known on date D* is the latest version per key among rows that
had arrived by D (``_ingest_date <= D``) and whose own timestamp is not after D. Both conditions
matter: the first keeps a recompute of D from seeing data that arrived later (late rows), the
second keeps records stamped in the future out.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse import delta_io
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.storage import table_uri


def end_of(day: dt.date):
    """The first instant after ``day`` (timestamps are UTC)."""
    return F.lit((day + dt.timedelta(days=1)).isoformat()).cast("timestamp")


def history(spark: SparkSession, settings: Settings, table: str, known_on: dt.date) -> DataFrame:
    uri = table_uri(settings, "silver", f"{table}_history")
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"silver.{table}_history does not exist at {uri}: run silver for the dates first")
    return (delta_io.read(spark, uri)
            .where(F.col("_ingest_date") <= F.lit(known_on.isoformat()).cast("date")))


def state_as_of(spark: SparkSession, settings: Settings, table: str, key: str, order_by: str,
                day: dt.date, known_on: dt.date | None = None) -> DataFrame:
    """Latest version per ``key`` with ``order_by`` before the end of ``day``, as known on ``known_on``."""
    rows = history(spark, settings, table, known_on or day).where(F.col(order_by) < end_of(day))
    w = Window.partitionBy(key).orderBy(F.col(order_by).desc(), F.col("_ingest_date").desc())
    return rows.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def subscription_state(spark: SparkSession, settings: Settings, day: dt.date,
                       known_on: dt.date | None = None) -> DataFrame:
    """One row per customer: the customer's most recent subscription as of ``day``."""
    subs = state_as_of(spark, settings, "subscriptions", "subscription_id", "updated_at", day, known_on)
    w = Window.partitionBy("customer_id").orderBy(F.col("start_date").desc(), F.col("subscription_id").desc())
    return subs.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def cancelled_on() -> "F.Column":
    """The date a subscription ended: ``cancel_date``, or the update's date for a cancelled row without one."""
    return F.coalesce(F.col("cancel_date"),
                      F.when(F.col("status") == "cancelled", F.to_date("updated_at")))


def active_at(subs: DataFrame, day: dt.date) -> DataFrame:
    """Subscriptions running on ``day``: started by then and not cancelled on or before it."""
    d = F.lit(day.isoformat()).cast("date")
    ended = cancelled_on()
    return subs.where((F.col("start_date") <= d) & (ended.isNull() | (ended > d)))
