"""``gold.churn_labels``: did a customer active on snapshot date D cancel within H days after D?

The label of (customer, D) is written by the run for date D + H, from the subscription state as known
on D + H, and never before: until the horizon has passed the outcome is unknown, and a model must not
be trained on a guess. Customers already gone on D have no snapshot and so no label.

This module computes, from frames to frames; ``gold.stage`` reads the inputs and writes the table.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.entities import cancelled_on, date_lit, latest_subscription


def label_snapshot_date(horizon_days: int, run_date: dt.date) -> dt.date:
    """The snapshot date the run for ``run_date`` labels: ``run_date - H``."""
    return run_date - dt.timedelta(days=horizon_days)


def labels(snapshot: DataFrame, subscriptions: DataFrame, run_date: dt.date, horizon_days: int) -> DataFrame:
    """Labels of the customers of ``snapshot`` (``customer_id``, ``snapshot_date``: the snapshot of
    ``run_date - horizon_days``) from ``subscriptions``, their state as of ``run_date``."""
    snap_day = label_snapshot_date(horizon_days, run_date)
    return labels_at(snapshot, subscriptions.select("*", date_lit(snap_day).alias("snapshot_date")), horizon_days)


def labels_at(snapshot: DataFrame, subscriptions: DataFrame, horizon_days: int) -> DataFrame:
    """``labels`` for many snapshot dates at once (the history load): ``subscriptions`` carries
    ``snapshot_date``, the snapshot its state (as of ``snapshot_date + horizon_days``) labels."""
    h = horizon_days
    ends = latest_subscription(subscriptions, by=("snapshot_date",)).select(
        "snapshot_date", "customer_id", cancelled_on().alias("churn_date"))
    d = F.col("snapshot_date")
    churned = (F.col("churn_date") > d) & (F.col("churn_date") <= F.date_add(d, h))
    return (snapshot.select("customer_id", "snapshot_date").join(ends, ["snapshot_date", "customer_id"], "left")
            .select("customer_id", "snapshot_date",
                    F.lit(h).alias("horizon_days"),
                    F.when(churned, 1).otherwise(0).alias("churned"),
                    F.when(churned, F.col("churn_date")).alias("churn_date"),
                    F.date_add(d, h).alias("labelled_on")))
