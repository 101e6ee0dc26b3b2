"""``gold.churn_labels``: did a customer active on snapshot date D cancel within H days after D?

The label of (customer, D) is written by the run for date D + H, from the subscription state as known
on D + H, and never before: until the horizon has passed the outcome is unknown, and a model must not
be trained on a guess. Customers already gone on D have no snapshot and so no label.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io
from lakehouse.config import Settings
from lakehouse.gold.entities import cancelled_on, subscription_state
from lakehouse.storage import table_uri

TABLE = "churn_labels"


def label_snapshot_date(settings: Settings, run_date: dt.date) -> dt.date:
    return run_date - dt.timedelta(days=settings.gold.label_horizon_days)


def build_labels(spark: SparkSession, settings: Settings, run_date: dt.date) -> DataFrame | None:
    """Labels for snapshot date ``run_date - H``; None when that snapshot does not exist."""
    h = settings.gold.label_horizon_days
    snap_day = label_snapshot_date(settings, run_date)
    from lakehouse.gold.features import TABLE as FEATURES

    uri = table_uri(settings, "gold", FEATURES)
    if not delta_io.is_delta(spark, uri):
        return None
    snap = (delta_io.read(spark, uri).where(F.col("snapshot_date") == F.lit(snap_day.isoformat()).cast("date"))
            .select("customer_id", "snapshot_date"))
    if snap.isEmpty():
        return None
    ends = (subscription_state(spark, settings, run_date)
            .select("customer_id", cancelled_on().alias("churn_date")))
    d = F.lit(snap_day.isoformat()).cast("date")
    churned = (F.col("churn_date") > d) & (F.col("churn_date") <= F.date_add(d, h))
    return (snap.join(ends, "customer_id", "left")
            .select("customer_id", "snapshot_date",
                    F.lit(h).alias("horizon_days"),
                    F.when(churned, 1).otherwise(0).alias("churned"),
                    F.when(churned, F.col("churn_date")).alias("churn_date"),
                    F.lit(run_date.isoformat()).cast("date").alias("labelled_on")))
