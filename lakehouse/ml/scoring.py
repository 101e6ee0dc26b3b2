"""Daily batch scoring with the champion (``jobs/score.py``): the reads, the scoring and the writes.

For run date D: every customer in D's feature snapshot is scored by ``models:/<name>@champion`` from
the same point-in-time retrieval training used (as_of = D), and D's partition of ``gold.churn_scores``
is replaced (idempotent). Then the monitoring (``ml.monitoring``) records the features' drift against
the champion's training data and, once labels for an earlier score date have matured, the realized
performance of those scores.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import catalog, delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.featurestore.store import get_historical_features
from lakehouse.ml import monitoring, tracking
from lakehouse.ml.promotion import NoChampionError, load_champion, model_feature_refs
from lakehouse.run_ids import new_run_id

log = logging.getLogger(__name__)


def risk_band(probability: Column, threshold: float, bands: dict[str, float]) -> Column:
    """``high`` from ``threshold * bands[high]``, ``medium`` from ``threshold * bands[medium]``, else ``low``."""
    return (F.when(probability >= threshold * bands.get("high", 1.0), "high")
            .when(probability >= threshold * bands.get("medium", 0.5), "medium").otherwise("low"))


def score_rows(model, frame: DataFrame, run_date: dt.date, threshold: float, bands: dict[str, float],
               model_name: str, model_version: str, run_id: str) -> DataFrame:
    """The ``gold.churn_scores`` rows of ``frame``'s customers (their features as the model was trained
    on them): churn probability, risk band and the model that scored them."""
    from pyspark.ml.functions import vector_to_array

    d = F.lit(run_date.isoformat()).cast("date")
    return (model.transform(frame)
            .select("customer_id", d.alias("score_date"), vector_to_array("probability")[1].alias("probability"))
            .withColumn("risk_band", risk_band(F.col("probability"), threshold, bands))
            .withColumn("model_name", F.lit(model_name))
            .withColumn("model_version", F.lit(model_version))
            .withColumn("run_id", F.lit(run_id)))


def score_customers(spark: SparkSession, settings: Settings, run_date: dt.date, run_id: str | None = None) -> dict:
    run_id = run_id or new_run_id("score", run_date)
    catalog.register(spark, settings)
    try:
        model, mv = load_champion(settings)
    except NoChampionError as exc:
        # the first weeks of a deployment: labels take label_horizon_days to mature, so no model yet
        log.warning("scoring skipped for %s: %s", run_date, exc)
        return {"run_date": run_date.isoformat(), "run_id": run_id, "scored": 0, "skipped": str(exc)}
    threshold = float(mv.tags.get("threshold", 0.5))
    d = F.lit(run_date.isoformat()).cast("date")
    snapshot = (delta_io.read(spark, tables.FEATURES.uri(settings)).where(F.col("snapshot_date") == d)
                .select("customer_id", F.col("snapshot_date").alias("as_of")))
    refs = [f"{settings.model.view}:{r}" for r in model_feature_refs(settings, tracking.client(settings), mv)]
    frame, retrieval = get_historical_features(spark, settings, snapshot, refs, plain_names=True)
    frame = frame.cache()
    try:
        n = frame.count()
        if n == 0:
            raise LakehouseError(f"no customers in {tables.FEATURES.qualified} for {run_date}: run gold for that date "
                                 "first")
        scores = score_rows(model, frame, run_date, threshold, settings.model.risk_bands, settings.model.name,
                            str(mv.version), run_id)
        meta = delta_io.commit_metadata(run_id, "score", run_date.isoformat(), model_version=str(mv.version))
        uri = tables.SCORES.uri(settings)
        delta_io.replace_partition(scores, uri, tables.SCORES.partition, run_date.isoformat(), meta)
        by_band = {r["risk_band"]: r["count"] for r in delta_io.read(spark, uri).where(F.col("score_date") == d)
                   .groupBy("risk_band").count().collect()}
        drift = monitoring.record_drift(spark, settings, frame, mv, run_date, run_id)
    finally:
        frame.unpersist()
    realized = monitoring.record_realized(spark, settings, run_date, run_id)
    result = {"run_date": run_date.isoformat(), "run_id": run_id, "scored": n, "model_version": str(mv.version),
              "threshold": threshold, "risk_bands": by_band, "scores_version": delta_io.latest_version(spark, uri),
              "feature_versions": retrieval.table_versions, "max_psi": max(drift.values()) if drift else None,
              "retrain_flag": bool(drift) and max(drift.values()) > settings.model.drift_psi_threshold,
              "realized": realized}
    log.info("scored %d customers for %s with %s v%s: %s; max PSI %s%s", n, run_date, settings.model.name,
             mv.version, by_band, result["max_psi"], " -> RETRAIN flagged" if result["retrain_flag"] else "")
    return result
