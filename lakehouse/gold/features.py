"""``gold.customer_daily_features``: one snapshot per date D of every customer active on D.

Every value is computed from data whose event time is on or before D *and* which had arrived by D
(see ``entities`` and ``activity``), so a snapshot never changes once written and a recompute of D
on any later day yields the same rows. The run for D writes only D's partition; its inputs are the
customer state as of D and the daily activity rows (one row per customer and day, not raw events).
Definitions, windows and null handling: docs/transformations.md.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.gold import activity as act
from lakehouse.gold.entities import active_at, state_as_of, subscription_state
from lakehouse.storage import table_uri

TABLE = "customer_daily_features"
FEATURE_VERSION = 1  # bump when a definition below changes (the feature registry records versions)


def _window_sums(daily: DataFrame, day: dt.date) -> DataFrame:
    d = F.lit(day.isoformat()).cast("date")
    age = F.datediff(d, F.col("activity_date"))  # 0 = the snapshot day itself

    def within(n: int, col: str, lo: int = 0):
        return F.sum(F.when((age >= lo) & (age < n), F.col(col)).otherwise(0))

    def days_with(n: int, col: str):
        return F.sum(F.when((age < n) & (F.col(col) > 0), 1).otherwise(0))

    def last_day(col: str):
        return F.datediff(d, F.max(F.when(F.col(col) > 0, F.col("activity_date"))))

    return daily.groupBy("customer_id").agg(
        F.sum("paid_amount").alias("total_spend"),
        within(7, "paid_amount").alias("spend_7d"),
        within(30, "paid_amount").alias("spend_30d"),
        within(90, "paid_amount").alias("spend_90d"),
        F.sum("paid_count").alias("payments_total"),
        within(30, "failed_count").alias("failed_payments_30d"),
        within(90, "failed_count").alias("failed_payments_90d"),
        within(90, "refund_amount").alias("refunds_90d"),
        last_day("paid_count").alias("days_since_last_payment"),
        within(7, "sessions").alias("sessions_7d"),
        within(30, "sessions").alias("sessions_30d"),
        within(60, "sessions", lo=30).alias("sessions_prev_30d"),
        within(30, "events").alias("events_30d"),
        within(30, "feature_uses").alias("feature_uses_30d"),
        days_with(7, "sessions").alias("active_days_7d"),
        days_with(30, "sessions").alias("active_days_30d"),
        last_day("logins").alias("days_since_last_login"),
        F.max_by("nps_score", "nps_at").alias("last_nps"),
        F.datediff(d, F.to_date(F.max("nps_at"))).alias("days_since_last_nps"),
    )


def build_snapshot(spark: SparkSession, settings: Settings, day: dt.date, daily: DataFrame | None = None) -> DataFrame:
    """Features of every customer active on ``day``, as known on ``day``.

    ``daily`` replaces the stored ``customer_activity_daily`` (a full recompute passes a rebuild).
    """
    d = F.lit(day.isoformat()).cast("date")
    subs = active_at(subscription_state(spark, settings, day), day)
    customers = state_as_of(spark, settings, "customers", "customer_id", "updated_at", day)
    base = subs.join(customers.select("customer_id", "country", "channel", "birth_year", "signup_date"),
                     "customer_id", "left")

    # the subscription as it was 60 days earlier (first known version if it started since)
    then = state_as_of(spark, settings, "subscriptions", "subscription_id", "updated_at",
                       day - dt.timedelta(days=60), known_on=day).select(
        "subscription_id", F.col("monthly_price").alias("price_60d_ago"), F.col("plan").alias("plan_60d_ago"))

    tickets = state_as_of(spark, settings, "support_tickets", "ticket_id", "updated_at", day)
    ticket_counts = tickets.groupBy("customer_id").agg(
        F.sum(F.when(F.col("status") == "open", 1).otherwise(0)).alias("open_tickets"),
        F.sum(F.when(F.datediff(d, F.to_date("created_at")) < 30, 1).otherwise(0)).alias("tickets_30d"),
        F.sum(F.when((F.datediff(d, F.to_date("created_at")) < 90) & (F.col("category") == "billing"), 1)
              .otherwise(0)).alias("billing_tickets_90d"))

    if daily is None:
        uri = table_uri(settings, "gold", act.TABLE)
        if not delta_io.is_delta(spark, uri):
            raise LakehouseError(f"gold.{act.TABLE} does not exist at {uri}: build activity for {day} first")
        daily = delta_io.read(spark, uri)
    daily = daily.where(F.col("ingest_date") <= d).where(F.col("activity_date") <= d)
    observed_since = daily.agg(F.min("activity_date")).first()[0]
    windows = _window_sums(daily, day)

    zero_fill = ["total_spend", "spend_7d", "spend_30d", "spend_90d", "payments_total", "failed_payments_30d",
                 "failed_payments_90d", "refunds_90d", "sessions_7d", "sessions_30d", "sessions_prev_30d",
                 "events_30d", "feature_uses_30d", "active_days_7d", "active_days_30d", "open_tickets",
                 "tickets_30d", "billing_tickets_90d"]
    observed = F.lit((day - observed_since).days + 1 if observed_since else 0)
    out = (base.join(then, "subscription_id", "left").join(windows, "customer_id", "left")
           .join(ticket_counts, "customer_id", "left").fillna(0, subset=zero_fill))
    tenure = F.datediff(d, F.coalesce(F.col("signup_date"), F.col("start_date")))
    return out.select(
        F.col("customer_id"),
        d.alias("snapshot_date"),
        F.col("plan"), F.col("contract"), F.col("monthly_price").cast("double").alias("monthly_price"),
        F.col("country"), F.col("channel"),
        (F.lit(day.year) - F.col("birth_year")).cast("int").alias("age"),
        tenure.cast("int").alias("tenure_days"),
        observed.cast("int").alias("observed_days"),
        F.round("total_spend", 2).alias("total_spend"),
        F.round("spend_7d", 2).alias("spend_7d"), F.round("spend_30d", 2).alias("spend_30d"),
        F.round("spend_90d", 2).alias("spend_90d"),
        F.round(F.when(F.col("payments_total") > 0, F.col("total_spend") / F.col("payments_total")), 2)
        .alias("avg_transaction"),
        F.col("failed_payments_30d").cast("int"), F.col("failed_payments_90d").cast("int"),
        F.round("refunds_90d", 2).alias("refunds_90d"),
        F.col("days_since_last_payment").cast("int"),
        F.col("sessions_7d").cast("int"), F.col("sessions_30d").cast("int"),
        F.col("sessions_prev_30d").cast("int"),
        F.col("events_30d").cast("int"), F.col("feature_uses_30d").cast("int"),
        F.col("active_days_7d").cast("int"), F.col("active_days_30d").cast("int"),
        F.col("days_since_last_login").cast("int"),
        # trends, smoothed by +1 so a quiet customer reads 1.0 rather than 0/0
        F.round((F.col("sessions_30d") + 1) / (F.col("sessions_prev_30d") + 1), 4).alias("session_trend_30d"),
        F.round((F.col("sessions_7d") + 1) / (F.col("sessions_30d") * 7 / 30 + 1), 4).alias("session_trend_7d"),
        F.col("open_tickets").cast("int"), F.col("tickets_30d").cast("int"),
        F.col("billing_tickets_90d").cast("int"),
        F.col("last_nps").cast("int"), F.col("days_since_last_nps").cast("int"),
        F.round(F.when(F.col("price_60d_ago") > 0, F.col("monthly_price") / F.col("price_60d_ago") - 1)
                .otherwise(0.0), 4).alias("price_change_60d"),
        (F.coalesce(F.col("plan_60d_ago"), F.col("plan")) != F.col("plan")).alias("plan_changed_60d"),
        F.lit(FEATURE_VERSION).alias("feature_version"),
    )
