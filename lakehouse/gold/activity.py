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


def _arrived(spark: SparkSession, settings: Settings, table: str, day: dt.date) -> DataFrame:
    uri = table_uri(settings, "silver", table)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"silver.{table} does not exist at {uri}: run silver for {day} first")
    return (delta_io.read(spark, uri)
            .where(F.col("_ingest_date") == F.lit(day.isoformat()).cast("date"))
            .where(F.col("customer_id").isNotNull()))


def build_activity(spark: SparkSession, settings: Settings, day: dt.date) -> DataFrame:
    """The ``ingest_date = day`` slice of customer_activity_daily, from silver rows that arrived on ``day``."""
    zero = {m: F.lit(0).cast("long") for m in ("sessions", "events", "feature_uses", "logins",
                                                "paid_count", "failed_count")}
    zero.update({m: F.lit(0.0) for m in ("paid_amount", "refund_amount")})

    def shape(df: DataFrame, **cols) -> DataFrame:
        out = {**zero, "nps_score": F.lit(None).cast("int"), "nps_at": F.lit(None).cast("timestamp"), **cols}
        return df.select("customer_id", "activity_date", *[c.alias(n) for n, c in out.items()])

    web = (_arrived(spark, settings, "web_events", day).where(F.col("ts").isNotNull())
           .groupBy("customer_id", F.to_date("ts").alias("activity_date"))
           .agg(F.countDistinct("session_id").alias("s"), F.count(F.lit(1)).alias("e"),
                F.sum(F.when(F.col("event_type") == "feature_use", 1).otherwise(0)).alias("f"),
                F.sum(F.when(F.col("event_type") == "login", 1).otherwise(0)).alias("l")))
    web = shape(web, sessions=F.col("s").cast("long"), events=F.col("e").cast("long"),
                feature_uses=F.col("f").cast("long"), logins=F.col("l").cast("long"))

    txn = (_arrived(spark, settings, "transactions", day).where(F.col("billed_at").isNotNull())
           .groupBy("customer_id", F.to_date("billed_at").alias("activity_date"))
           .agg(F.sum(F.when(F.col("status") == "paid", F.col("amount")).otherwise(0.0)).alias("pa"),
                F.sum(F.when(F.col("status") == "paid", 1).otherwise(0)).alias("pc"),
                F.sum(F.when(F.col("status") == "failed", 1).otherwise(0)).alias("fc"),
                F.sum(F.when(F.col("status") == "refunded", F.col("amount")).otherwise(0.0)).alias("ra")))
    txn = shape(txn, paid_amount=F.col("pa"), paid_count=F.col("pc").cast("long"),
                failed_count=F.col("fc").cast("long"), refund_amount=F.col("ra"))

    nps = (_arrived(spark, settings, "nps_responses", day).where(F.col("submitted_at").isNotNull())
           .groupBy("customer_id", F.to_date("submitted_at").alias("activity_date"))
           .agg(F.max_by("score", "submitted_at").alias("sc"), F.max("submitted_at").alias("at")))
    nps = shape(nps, nps_score=F.col("sc").cast("int"), nps_at=F.col("at"))

    aggs = [F.sum(m).alias(m) for m in MEASURES]
    aggs += [F.max_by("nps_score", "nps_at").alias("nps_score"), F.max("nps_at").alias("nps_at")]
    return (web.unionByName(txn).unionByName(nps)
            .groupBy("customer_id", "activity_date").agg(*aggs)
            .withColumn("ingest_date", F.lit(day.isoformat()).cast("date")))
