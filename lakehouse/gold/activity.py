"""``gold.customer_activity_daily``: one row per (customer, activity date, ingest date).

The incremental base of every windowed feature. The run for date D aggregates only the event rows
that *arrived* on D (silver rows with ``_ingest_date = D``; event tables are insert-only in silver,
so that date never moves) and replaces the ``ingest_date = D`` partition. A late row (event on D-3,
arriving on D) lands in D's partition with ``activity_date = D-3``: a snapshot for D-3 computed
earlier never saw it, and a recompute of D-3 still does not (snapshots read ``ingest_date <= D``).

This module computes, from frames to frames; ``gold.stage`` reads the silver rows and writes the table.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

KEY = ["customer_id", "activity_date", "ingest_date"]
MEASURES = {  # column -> how rows of the same key combine (all sums except the NPS pair)
    "sessions": "sum", "events": "sum", "feature_uses": "sum", "logins": "sum",
    "paid_amount": "sum", "paid_count": "sum", "failed_count": "sum", "refund_amount": "sum",
}
SESSION_LOOKBACK_DAYS = 2  # a session seen in an earlier batch started at most this long before a new event


def new_sessions(events: DataFrame, seen: DataFrame | None = None) -> DataFrame:
    """(customer_id, session_id, _ingest_date, activity_date) of each session, counted once: in the batch
    its first event arrived in, on the date of its earliest event in that batch.

    Distinct sessions are not additive across batches (a late event of yesterday's session arrives
    today). With ``seen`` (the ``session_id`` of sessions of earlier batches: the incremental run) the
    sessions in it are dropped; without it (``events`` holds every batch: the full recompute) each
    session's first batch is kept. Both give the same rows.
    """
    rows = events.where(F.col("session_id").isNotNull())
    if seen is not None:
        rows = rows.join(seen, "session_id", "left_anti")
    per_batch = rows.groupBy("customer_id", "session_id", "_ingest_date").agg(F.min(F.to_date("ts")).alias("activity_date"))
    if seen is not None:
        return per_batch
    # each session's first batch, found among its batches (grouped first), not among all of its events
    first = per_batch.groupBy("session_id").agg(F.min("_ingest_date").alias("_first"))
    return (per_batch.join(first, "session_id").where(F.col("_ingest_date") == F.col("_first"))
            .select("customer_id", "session_id", "_ingest_date", "activity_date"))


def compute_activity(web_events: DataFrame, transactions: DataFrame, nps_responses: DataFrame,
                     seen_sessions: DataFrame | None = None) -> DataFrame:
    """customer_activity_daily rows from silver rows (with ``customer_id`` and ``_ingest_date``): one row
    per (customer, activity date, ingest date). ``seen_sessions``: see ``new_sessions``."""
    keys = ["customer_id", "activity_date", "_ingest_date"]
    zero = {m: F.lit(0).cast("long") for m in ("sessions", "events", "feature_uses", "logins",
                                                "paid_count", "failed_count")}
    zero.update({m: F.lit(0.0) for m in ("paid_amount", "refund_amount")})

    def shape(df: DataFrame, **cols) -> DataFrame:
        out = {**zero, "nps_score": F.lit(None).cast("int"), "nps_at": F.lit(None).cast("timestamp"), **cols}
        return df.select("customer_id", "activity_date", "_ingest_date", *[c.alias(n) for n, c in out.items()])

    events = web_events.where(F.col("ts").isNotNull())
    web = (events.groupBy("customer_id", F.to_date("ts").alias("activity_date"), "_ingest_date")
           .agg(F.count(F.lit(1)).alias("e"),
                F.sum(F.when(F.col("event_type") == "feature_use", 1).otherwise(0)).alias("f"),
                F.sum(F.when(F.col("event_type") == "login", 1).otherwise(0)).alias("l")))
    web = shape(web, events=F.col("e").cast("long"), feature_uses=F.col("f").cast("long"),
                logins=F.col("l").cast("long"))
    sessions = shape(new_sessions(events, seen_sessions)
                     .groupBy("customer_id", "activity_date", "_ingest_date").agg(F.count(F.lit(1)).alias("s")),
                     sessions=F.col("s").cast("long"))

    txn = (transactions.where(F.col("billed_at").isNotNull())
           .groupBy("customer_id", F.to_date("billed_at").alias("activity_date"), "_ingest_date")
           .agg(F.sum(F.when(F.col("status") == "paid", F.col("amount")).otherwise(0.0)).alias("pa"),
                F.sum(F.when(F.col("status") == "paid", 1).otherwise(0)).alias("pc"),
                F.sum(F.when(F.col("status") == "failed", 1).otherwise(0)).alias("fc"),
                F.sum(F.when(F.col("status") == "refunded", F.col("amount")).otherwise(0.0)).alias("ra")))
    txn = shape(txn, paid_amount=F.col("pa"), paid_count=F.col("pc").cast("long"),
                failed_count=F.col("fc").cast("long"), refund_amount=F.col("ra"))

    nps = (nps_responses.where(F.col("submitted_at").isNotNull())
           .groupBy("customer_id", F.to_date("submitted_at").alias("activity_date"), "_ingest_date")
           .agg(F.max_by("score", "submitted_at").alias("sc"), F.max("submitted_at").alias("at")))
    nps = shape(nps, nps_score=F.col("sc").cast("int"), nps_at=F.col("at"))

    aggs = [F.sum(m).alias(m) for m in MEASURES]
    aggs += [F.max_by("nps_score", "nps_at").alias("nps_score"), F.max("nps_at").alias("nps_at")]
    return (web.unionByName(sessions).unionByName(txn).unionByName(nps)
            .groupBy(*keys).agg(*aggs).withColumnRenamed("_ingest_date", "ingest_date"))
