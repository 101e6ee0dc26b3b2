"""Small gold tables with a known churn mechanism: for testing the model stage on its own, and for
the walkthrough's demo champion (`lakehouse walkthrough`).

The full pipeline (ingest -> silver -> gold) is exercised by test_gold and the DAG test; training
needs many labelled dates, which the real path would take minutes per date to produce. These rows go
through the real DDL (types, NOT NULL, CHECK constraints) and the real feature store.

Mechanism: each customer has an engagement level; a share are "declining" (sessions shrink), and
failed payments and open tickets add risk. ``shift`` scales sessions down and failed payments up,
the drifted scenario for the monitoring test.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from lakehouse import catalog, delta_io, tables

PLANS = ["basic", "standard", "premium"]


def snapshot(rng, ids, day: dt.date, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(ids)
    base = rng.lognormal(1.2, 0.4, n)
    declining = rng.random(n) < 0.25
    s30 = rng.poisson(base * 30 * (1 - 0.5 * shift))
    s7 = rng.poisson(base * 7 * np.where(declining, 0.3, 1.0) * (1 - 0.5 * shift))
    prev = rng.poisson(base * 30)
    failed = rng.poisson(0.2 + 0.8 * shift, n)
    tickets = rng.poisson(0.15, n)
    plan = rng.choice(PLANS, n, p=[0.45, 0.38, 0.17])
    risk = -4.4 + 3.0 * declining + 0.8 * failed + 0.6 * tickets + 0.4 * (plan == "basic")
    churn = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)
    tenure = rng.integers(10, 900, n)
    nps = np.where(rng.random(n) < 0.3, rng.integers(0, 11, n), -1)
    df = pd.DataFrame({
        "customer_id": ids, "snapshot_date": day, "plan": plan,
        "contract": rng.choice(["monthly", "annual"], n, p=[0.7, 0.3]),
        "monthly_price": np.select([plan == p for p in PLANS], [9.99, 19.99, 34.99]),
        "country": rng.choice(["DE", "FR", "US", "GB"], n), "channel": rng.choice(["organic", "paid_search"], n),
        "age": rng.integers(18, 75, n).astype("int32"), "tenure_days": tenure.astype("int32"),
        "observed_days": np.int32(60), "total_spend": np.round(base * 50, 2), "spend_7d": 0.0,
        "spend_30d": np.round(base * 10, 2), "spend_90d": np.round(base * 30, 2),
        "avg_transaction": np.round(base * 5, 2), "failed_payments_30d": failed.astype("int32"),
        "failed_payments_90d": failed.astype("int32"), "refunds_90d": 0.0,
        "days_since_last_payment": rng.integers(0, 30, n).astype("int32"),
        "sessions_7d": s7.astype("int32"), "sessions_30d": s30.astype("int32"),
        "sessions_prev_30d": prev.astype("int32"), "events_30d": (s30 * 4).astype("int32"),
        "feature_uses_30d": s30.astype("int32"), "active_days_7d": np.minimum(s7, 7).astype("int32"),
        "active_days_30d": np.minimum(s30, 30).astype("int32"),
        "days_since_last_login": np.where(s7 > 0, 1, 8).astype("int32"),
        "session_trend_30d": np.round((s30 + 1) / (prev + 1), 4),
        "session_trend_7d": np.round((s7 + 1) / (s30 * 7 / 30 + 1), 4),
        "open_tickets": tickets.astype("int32"), "tickets_30d": tickets.astype("int32"),
        "billing_tickets_90d": np.int32(0), "last_nps": pd.array(np.where(nps >= 0, nps, None), dtype="Int32"),
        "days_since_last_nps": pd.array(np.where(nps >= 0, 5, None), dtype="Int32"),
        "price_change_60d": 0.0, "plan_changed_60d": False, "feature_version": np.int32(1),
    })
    return df, churn


def write(spark, settings, start: dt.date, days: int, customers: int, seed: int = 1, horizon: int = 30,
          shift: float = 0.0, labels: bool = True) -> list[dt.date]:
    """Snapshots (and labels) for ``days`` dates from ``start``; returns the dates written."""
    catalog.register(spark, settings)
    rng = np.random.default_rng(seed)
    ids = [f"C{i:07d}" for i in range(1, customers + 1)]
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    feat_schema = spark.table("gold.customer_daily_features").schema
    label_schema = spark.table("gold.churn_labels").schema
    snaps, labs = [], []
    for day in dates:
        df, churn = snapshot(rng, ids, day, shift)
        snaps.append(df)
        labs.append(pd.DataFrame({"customer_id": ids, "snapshot_date": day, "horizon_days": np.int32(horizon),
                                  "churned": churn.astype("int32"),
                                  "churn_date": [day + dt.timedelta(days=5) if c else None for c in churn],
                                  "labelled_on": day + dt.timedelta(days=horizon)}))
    # all dates in one commit per table (a Delta commit costs seconds at this size; a date's doesn't)
    span = f"snapshot_date BETWEEN '{dates[0].isoformat()}' AND '{dates[-1].isoformat()}'"
    written = [(tables.FEATURES, pd.concat(snaps, ignore_index=True), feat_schema)]
    if labels:
        written.append((tables.LABELS, pd.concat(labs, ignore_index=True), label_schema))
    for table, frame, schema in written:
        delta_io.replace_where(_spark_frame(spark, frame, schema), table.uri(settings), span, "{}")
    return dates


def _spark_frame(spark, frame: pd.DataFrame, schema):
    """``frame``'s ``schema`` columns as a Spark frame, sent through Arrow: a million rows in seconds,
    where rows of Python objects take minutes (``lakehouse bench train`` writes that many)."""
    from lakehouse.spark import session_conf

    # (Arrow sends the rows to the JVM here: the setting need not outlive the call)
    with session_conf(spark, {"spark.sql.execution.arrow.pyspark.enabled": "true"}):
        return spark.createDataFrame(frame[[f.name for f in schema]], schema)
