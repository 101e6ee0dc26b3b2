"""``gold.customer_activity_daily``: one row per (customer, activity date, ingest date).

The incremental base of every windowed feature. The run for date D aggregates only the event rows
that *arrived* on D (silver rows with ``_ingest_date = D``; event tables are insert-only in silver,
so that date never moves) and replaces the ``ingest_date = D`` partition. A late row (event on D-3,
arriving on D) lands in D's partition with ``activity_date = D-3``: a snapshot for D-3 computed
earlier never saw it, and a recompute of D-3 still does not (snapshots read ``ingest_date <= D``).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.storage import table_uri

TABLE = "customer_activity_daily"
KEY = ["customer_id", "activity_date", "ingest_date"]
MEASURES = {  # column -> how rows of the same key combine (all sums except the NPS pair)
    "sessions": "sum", "events": "sum", "feature_uses": "sum", "logins": "sum",
    "paid_amount": "sum", "paid_count": "sum", "failed_count": "sum", "refund_amount": "sum",
}


def _arrived(spark: SparkSession, settings: Settings, table: str, day: dt.date, through: bool) -> DataFrame:
    uri = table_uri(settings, "silver", table)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"silver.{table} does not exist at {uri}: run silver for {day} first")
    d = F.lit(day.isoformat()).cast("date")
    arrived = F.col("_ingest_date") <= d if through else F.col("_ingest_date") == d
    return delta_io.read(spark, uri).where(arrived).where(F.col("customer_id").isNotNull())


def _new_sessions(spark: SparkSession, settings: Settings, events: DataFrame, day: dt.date,
                  through: bool) -> DataFrame:
    """(customer_id, session_id, activity_date, _ingest_date) of each session, counted once: in the batch
    its first event arrived in, on the date of its earliest event in that batch.

    Distinct sessions are not additive across batches (a late event of yesterday's session arrives
    today), so the incremental run drops sessions already seen in earlier batches; the full
    recompute keeps each session's first batch. Both give the same rows.
    """
    rows = events.where(F.col("session_id").isNotNull())
    if through:
        first = rows.groupBy("session_id").agg(F.min("_ingest_date").alias("_first"))
        rows = rows.join(first, "session_id").where(F.col("_ingest_date") == F.col("_first"))
    else:
        since = rows.agg(F.min(F.to_date("ts"))).first()[0]
        if since is not None:
            earlier = (delta_io.read(spark, table_uri(settings, "silver", "web_events"))
                       .where(F.col("_ingest_date") < F.lit(day.isoformat()).cast("date"))
                       .where(F.col("ts") >= F.lit(since.isoformat()).cast("timestamp") - F.expr("INTERVAL 2 DAYS"))
                       .select("session_id").distinct())
            rows = rows.join(earlier, "session_id", "left_anti")
    return (rows.groupBy("customer_id", "session_id", "_ingest_date")
            .agg(F.min(F.to_date("ts")).alias("activity_date")))


def build_activity(spark: SparkSession, settings: Settings, day: dt.date, through: bool = False) -> DataFrame:
    """The ``ingest_date = day`` slice of customer_activity_daily, from silver rows that arrived on ``day``.

    ``through=True`` is the full recompute: every slice up to ``day`` in one pass over silver (used to
    check that the incremental table equals a rebuild, and to rebuild after a definition change).
    """
    keys = ["customer_id", "activity_date", "_ingest_date"]
    zero = {m: F.lit(0).cast("long") for m in ("sessions", "events", "feature_uses", "logins",
                                                "paid_count", "failed_count")}
    zero.update({m: F.lit(0.0) for m in ("paid_amount", "refund_amount")})

    def shape(df: DataFrame, **cols) -> DataFrame:
        out = {**zero, "nps_score": F.lit(None).cast("int"), "nps_at": F.lit(None).cast("timestamp"), **cols}
        return df.select("customer_id", "activity_date", "_ingest_date", *[c.alias(n) for n, c in out.items()])

    events = _arrived(spark, settings, "web_events", day, through).where(F.col("ts").isNotNull())
    web = (events.groupBy("customer_id", F.to_date("ts").alias("activity_date"), "_ingest_date")
           .agg(F.count(F.lit(1)).alias("e"),
                F.sum(F.when(F.col("event_type") == "feature_use", 1).otherwise(0)).alias("f"),
                F.sum(F.when(F.col("event_type") == "login", 1).otherwise(0)).alias("l")))
    web = shape(web, events=F.col("e").cast("long"), feature_uses=F.col("f").cast("long"),
                logins=F.col("l").cast("long"))
    sessions = shape(_new_sessions(spark, settings, events, day, through)
                     .groupBy("customer_id", "activity_date", "_ingest_date").agg(F.count(F.lit(1)).alias("s")),
                     sessions=F.col("s").cast("long"))

    txn = (_arrived(spark, settings, "transactions", day, through).where(F.col("billed_at").isNotNull())
           .groupBy("customer_id", F.to_date("billed_at").alias("activity_date"), "_ingest_date")
           .agg(F.sum(F.when(F.col("status") == "paid", F.col("amount")).otherwise(0.0)).alias("pa"),
                F.sum(F.when(F.col("status") == "paid", 1).otherwise(0)).alias("pc"),
                F.sum(F.when(F.col("status") == "failed", 1).otherwise(0)).alias("fc"),
                F.sum(F.when(F.col("status") == "refunded", F.col("amount")).otherwise(0.0)).alias("ra")))
    txn = shape(txn, paid_amount=F.col("pa"), paid_count=F.col("pc").cast("long"),
                failed_count=F.col("fc").cast("long"), refund_amount=F.col("ra"))

    nps = (_arrived(spark, settings, "nps_responses", day, through).where(F.col("submitted_at").isNotNull())
           .groupBy("customer_id", F.to_date("submitted_at").alias("activity_date"), "_ingest_date")
           .agg(F.max_by("score", "submitted_at").alias("sc"), F.max("submitted_at").alias("at")))
    nps = shape(nps, nps_score=F.col("sc").cast("int"), nps_at=F.col("at"))

    aggs = [F.sum(m).alias(m) for m in MEASURES]
    aggs += [F.max_by("nps_score", "nps_at").alias("nps_score"), F.max("nps_at").alias("nps_at")]
    return (web.unionByName(sessions).unionByName(txn).unionByName(nps)
            .groupBy(*keys).agg(*aggs).withColumnRenamed("_ingest_date", "ingest_date"))
