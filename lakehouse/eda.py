"""Exploratory analysis on the gold layer: a clean customer-level table, statistics, plots, one HTML page.

``lakehouse eda --date D`` (and notebooks/eda.ipynb) writes to ``reports/eda/date=D/``:
summary_statistics.csv, histograms.png, boxplots.png (outliers by the 1.5 IQR rule marked),
correlation.png, churn_by_segment.png, trends.png and report.html. The customer-level table
``gold.customer_analysis`` (one row per customer known by D, churned or not) is written too.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import tempfile
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.gold.entities import cancelled_on
from lakehouse.gold.entity_store import read_state_as_of, read_subscription_state
from lakehouse.storage import storage_for

log = logging.getLogger(__name__)
REGIONS = {"DE": "EU", "FR": "EU", "ES": "EU", "NL": "EU", "GB": "UK", "US": "NA", "CA": "NA"}
NUMERIC = ["tenure_days", "age", "monthly_price", "total_spend", "sessions_30d", "active_days_30d",
           "failed_payments", "tickets", "days_since_last_login"]


def customer_analysis(spark: SparkSession, settings: Settings, day: dt.date) -> DataFrame:
    """One clean row per customer known by ``day``: profile, plan, lifetime activity, churn status."""
    d = F.lit(day.isoformat()).cast("date")
    customers = read_state_as_of(spark, settings, "customers", day)
    subs = read_subscription_state(spark, settings, day)
    daily = (delta_io.read(spark, tables.ACTIVITY.uri(settings))
             .where((F.col("ingest_date") <= d) & (F.col("activity_date") <= d)))
    act = daily.groupBy("customer_id").agg(
        F.round(F.sum("paid_amount"), 2).alias("total_spend"),
        F.sum(F.when(F.datediff(d, "activity_date") < 30, F.col("sessions")).otherwise(0)).cast("int").alias("sessions_30d"),
        F.sum(F.when((F.datediff(d, "activity_date") < 30) & (F.col("sessions") > 0), 1).otherwise(0)).cast("int")
        .alias("active_days_30d"),
        F.sum("failed_count").cast("int").alias("failed_payments"),
        F.datediff(d, F.max(F.when(F.col("logins") > 0, F.col("activity_date")))).alias("days_since_last_login"))
    tickets = (read_state_as_of(spark, settings, "support_tickets", day)
               .groupBy("customer_id").agg(F.count(F.lit(1)).cast("int").alias("tickets")))
    region = F.create_map(*[x for k, v in REGIONS.items() for x in (F.lit(k), F.lit(v))])
    ended = cancelled_on()
    return (subs.select("customer_id", "plan", "contract", "monthly_price", "start_date", ended.alias("churn_date"))
            .join(customers.select("customer_id", "country", "channel", "birth_year", "signup_date"), "customer_id", "left")
            .join(act, "customer_id", "left").join(tickets, "customer_id", "left")
            .fillna(0, subset=["total_spend", "sessions_30d", "active_days_30d", "failed_payments", "tickets"])
            .select("customer_id", "plan", "contract", F.col("monthly_price").cast("double").alias("monthly_price"),
                    "country", region[F.col("country")].alias("region"), "channel",
                    (F.lit(day.year) - F.col("birth_year")).cast("int").alias("age"),
                    F.coalesce("signup_date", "start_date").alias("signup_date"),
                    F.datediff(F.coalesce(F.col("churn_date"), d), F.coalesce("signup_date", "start_date"))
                    .alias("tenure_days"),
                    "total_spend", "sessions_30d", "active_days_30d", "failed_payments", "tickets",
                    "days_since_last_login",
                    (F.col("churn_date").isNotNull() & (F.col("churn_date") <= d)).cast("int").alias("churned"),
                    "churn_date", d.alias("as_of")))


def _trends(spark: SparkSession, settings: Settings, day: dt.date) -> pd.DataFrame:
    d = F.lit(day.isoformat()).cast("date")
    actives = (delta_io.read(spark, tables.FEATURES.uri(settings)).where(F.col("snapshot_date") <= d)
               .groupBy(F.col("snapshot_date").alias("date")).agg(F.count(F.lit(1)).alias("active_customers")))
    revenue = (delta_io.read(spark, tables.ACTIVITY.uri(settings))
               .where((F.col("ingest_date") <= d) & (F.col("activity_date") <= d))
               .groupBy(F.col("activity_date").alias("date")).agg(F.round(F.sum("paid_amount"), 2).alias("revenue")))
    subs = read_subscription_state(spark, settings, day)
    new = subs.groupBy(F.col("start_date").alias("date")).agg(F.count(F.lit(1)).alias("new_customers"))
    churned = (subs.where(cancelled_on().isNotNull()).groupBy(cancelled_on().alias("date"))
               .agg(F.count(F.lit(1)).alias("churned_customers")))
    first = actives.agg(F.min("date")).first()[0]
    out = actives.join(revenue, "date", "full").join(new, "date", "full").join(churned, "date", "full")
    if first:
        out = out.where((F.col("date") >= F.lit(first)) & (F.col("date") <= d))
    return out.orderBy("date").toPandas().fillna(0)


def run_eda(spark: SparkSession, settings: Settings, day: dt.date, out_dir: Path | None = None) -> dict:
    """Write the EDA artifacts for ``day``; returns their paths and headline numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lakehouse import catalog

    catalog.register(spark, settings)
    analysis = customer_analysis(spark, settings, day).cache()
    delta_io.replace_where(analysis, tables.ANALYSIS.uri(settings), "true",
                           delta_io.commit_metadata(f"eda-{day}", "eda", day.isoformat()))
    pdf = analysis.toPandas()
    analysis.unpersist()
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="eda-")
        local = Path(tmp.name)
    else:
        local = out_dir
    local.mkdir(parents=True, exist_ok=True)
    files = {}

    stats = pdf[NUMERIC + ["churned"]].describe(percentiles=[0.05, 0.25, 0.5, 0.75, 0.95]).T
    stats["missing"] = pdf[NUMERIC + ["churned"]].isna().sum()
    stats.to_csv(local / "summary_statistics.csv")
    files["summary_statistics"] = local / "summary_statistics.csv"

    fig, axes = plt.subplots(3, 3, figsize=(12, 9))
    for ax, col in zip(axes.flat, NUMERIC):
        values = pdf[col].dropna()
        ax.hist(values, bins=30, color="#4477aa")
        ax.set_title(f"{col} (n={len(values)})", fontsize=9)
    fig.suptitle(f"Distributions of customer features as of {day}")
    fig.tight_layout()
    fig.savefig(local / "histograms.png", dpi=80)
    plt.close(fig)
    files["histograms"] = local / "histograms.png"

    outliers = {}
    fig, axes = plt.subplots(3, 3, figsize=(12, 9))
    for ax, col in zip(axes.flat, NUMERIC):
        values = pdf[col].dropna().to_numpy(dtype=float)
        q1, q3 = (np.percentile(values, [25, 75]) if len(values) else (0, 0))
        lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        out = values[(values < lo) | (values > hi)]
        outliers[col] = int(len(out))
        ax.boxplot(values, orientation="horizontal", showfliers=False)
        ax.scatter(out, np.ones(len(out)), color="#cc3311", s=8, label=f"{len(out)} outliers")
        ax.set_title(col, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("Box plots (whiskers 1.5 IQR; outliers in red)")
    fig.tight_layout()
    fig.savefig(local / "boxplots.png", dpi=80)
    plt.close(fig)
    files["boxplots"] = local / "boxplots.png"

    corr = pdf[NUMERIC + ["churned"]].astype(float).corr()
    fig, ax = plt.subplots(figsize=(8, 7))
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(corr)), corr.columns, fontsize=8)
    for (i, j), v in np.ndenumerate(corr.to_numpy()):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im)
    ax.set_title("Correlation (Pearson)")
    fig.tight_layout()
    fig.savefig(local / "correlation.png", dpi=80)
    plt.close(fig)
    files["correlation"] = local / "correlation.png"

    pdf["tenure_band"] = pd.cut(pdf["tenure_days"], [-1, 90, 365, 730, 10**6], labels=["<3m", "3-12m", "1-2y", "2y+"])
    segments = {}
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.6), sharey=True)
    for ax, seg in zip(axes, ["plan", "tenure_band", "region", "channel", "contract"]):
        rate = pdf.groupby(seg, observed=True)["churned"].agg(["mean", "count"])
        segments[seg] = rate.round(4).to_dict(orient="index")
        ax.bar([str(i) for i in rate.index], rate["mean"], color="#228833")
        ax.set_title(f"churn rate by {seg}", fontsize=9)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    fig.savefig(local / "churn_by_segment.png", dpi=80)
    plt.close(fig)
    files["churn_by_segment"] = local / "churn_by_segment.png"

    trends = _trends(spark, settings, day)
    fig, axes = plt.subplots(2, 2, figsize=(12, 6), sharex=True)
    for ax, col in zip(axes.flat, ["active_customers", "revenue", "new_customers", "churned_customers"]):
        ax.plot(trends["date"], trends[col], marker=".")
        ax.set_title(col.replace("_", " "), fontsize=9)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(local / "trends.png", dpi=80)
    plt.close(fig)
    files["trends"] = local / "trends.png"
    trends.to_csv(local / "trends.csv", index=False)

    headline = {"customers": int(len(pdf)), "churned": int(pdf["churned"].sum()),
                "churn_rate": round(float(pdf["churned"].mean()), 4) if len(pdf) else 0.0,
                "outliers": outliers, "segments": segments, "days": int(len(trends))}
    rows = "".join(f"<tr><th>{html.escape(str(i))}</th>" + "".join(f"<td>{v:.3g}</td>" for v in r) + "</tr>"
                   for i, r in stats.round(3).iterrows())
    imgs = "".join(f"<h2>{k.replace('_', ' ')}</h2><img src='{p.name}' style='max-width:100%'>"
                   for k, p in files.items() if p.suffix == ".png")
    page = (f"<html><head><meta charset='utf-8'><title>EDA {day}</title></head><body style='font-family:sans-serif'>"
            f"<h1>Customer EDA as of {day}</h1><p>{headline['customers']} customers, {headline['churned']} churned "
            f"({headline['churn_rate']:.1%}) since records began; {headline['days']} days of history.</p>"
            f"<h2>Summary statistics</h2><table border='1' cellpadding='3'><tr><th></th>"
            + "".join(f"<th>{c}</th>" for c in stats.columns) + f"</tr>{rows}</table>{imgs}</body></html>")
    (local / "report.html").write_text(page)
    files["report"] = local / "report.html"
    where = str(local)
    if tmp is not None:  # into the lake beside the data (local filesystem or HDFS)
        storage = storage_for(settings)
        rel = f"reports/eda/date={day}"
        storage.replace_dir(rel, {f.name: f.read_bytes() for f in local.iterdir() if f.is_file()},
                            tmp_tag=f"eda-{day}")
        where = storage.join(rel)
        tmp.cleanup()
    log.info("EDA for %s: %d customers, churn rate %.3f; artifacts in %s", day, headline["customers"],
             headline["churn_rate"], where)
    return {"dir": where, "files": sorted(p.name for p in files.values()), **headline}
