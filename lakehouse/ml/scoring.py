"""Daily batch scoring with the champion (``jobs/score.py``), drift and realized-performance monitoring.

For run date D: every customer in D's feature snapshot is scored by ``models:/<name>@champion`` from
the same point-in-time retrieval training used (as_of = D), and D's partition of ``gold.churn_scores``
is replaced (idempotent). Then:
  * drift: population stability index of each numeric feature between the champion's training data
    (bins stored with the model) and D's scoring rows -> ``ops/feature_drift``; any PSI above
    ``model.drift_psi_threshold`` flags retraining;
  * realized performance: once labels for an earlier score date have matured, the ROC AUC and PR AUC
    of those scores against what happened -> ``ops/model_performance``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import catalog, delta_io
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.featurestore.store import get_training_features
from lakehouse.gold.features import TABLE as FEATURES
from lakehouse.gold.labels import TABLE as LABELS
from lakehouse.ml import metrics as M
from lakehouse.ml import tracking
from lakehouse.ml.train import CHAMPION, bin_counts, model_feature_refs
from lakehouse.storage import table_uri

log = logging.getLogger(__name__)
SCORES = "churn_scores"


class NoChampionError(LakehouseError):
    """No registered model carries the champion alias yet."""


def load_champion(settings: Settings):
    """(PipelineModel, model version object) for ``models:/<name>@champion``."""
    from mlflow.exceptions import MlflowException

    tracking.setup(settings)
    client = tracking.client(settings)
    name = settings.model.name
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise NoChampionError(f"no model has the alias {name}@{CHAMPION} in {tracking.tracking_uri(settings)}: "
                             "run jobs/train.py first") from None
    return tracking.load_spark_model(settings, f"models:/{name}@{CHAMPION}"), mv


def psi(expected: list[float], actual: list[float], eps: float = 1e-4) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over bins, shares floored at ``eps``."""
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, eps), max(a, eps)
        total += (a - e) * math.log(a / e)
    return total


def feature_drift(frame: DataFrame, reference: dict) -> dict[str, float]:
    """PSI of each referenced column present in ``frame`` (all columns binned in one Spark job)."""
    present = {col: ref for col, ref in reference.items() if col in frame.columns}
    out = {}
    for col, counts in bin_counts(frame, {col: ref["edges"] for col, ref in present.items()}).items():
        n = sum(counts) or 1
        out[col] = round(psi(present[col]["shares"], [c / n for c in counts]), 5)
    return out


def score_customers(spark: SparkSession, settings: Settings, run_date: dt.date, run_id: str | None = None) -> dict:
    from pyspark.ml.functions import vector_to_array

    run_id = run_id or f"score-{run_date}-{uuid.uuid4().hex[:8]}"
    catalog.register(spark, settings)
    try:
        model, mv = load_champion(settings)
    except NoChampionError as exc:
        # the first weeks of a deployment: labels take label_horizon_days to mature, so no model yet
        log.warning("scoring skipped for %s: %s", run_date, exc)
        return {"run_date": run_date.isoformat(), "run_id": run_id, "scored": 0, "skipped": str(exc)}
    threshold = float(mv.tags.get("threshold", 0.5))
    bands = settings.model.risk_bands
    d = F.lit(run_date.isoformat()).cast("date")
    snapshot = (delta_io.read(spark, table_uri(settings, "gold", FEATURES)).where(F.col("snapshot_date") == d)
                .select("customer_id", F.col("snapshot_date").alias("as_of")))
    refs = [f"{settings.model.view}:{r}" for r in model_feature_refs(settings, tracking.client(settings), mv)]
    frame, retrieval = get_training_features(spark, settings, snapshot, refs, plain_names=True)
    frame = frame.cache()
    n = frame.count()
    if n == 0:
        frame.unpersist()
        raise LakehouseError(f"no customers in gold.{FEATURES} for {run_date}: run gold for that date first")
    p = vector_to_array("probability")[1]
    band = (F.when(F.col("probability") >= threshold * bands.get("high", 1.0), "high")
            .when(F.col("probability") >= threshold * bands.get("medium", 0.5), "medium").otherwise("low"))
    scores = (model.transform(frame).select("customer_id", d.alias("score_date"), p.alias("probability"))
              .withColumn("risk_band", band)
              .withColumn("model_name", F.lit(settings.model.name))
              .withColumn("model_version", F.lit(str(mv.version)))
              .withColumn("run_id", F.lit(run_id)))
    meta = delta_io.commit_metadata(run_id, "score", run_date.isoformat(), model_version=str(mv.version))
    uri = table_uri(settings, "gold", SCORES)
    delta_io.replace_partition(scores, uri, "score_date", run_date.isoformat(), meta)
    by_band = {r["risk_band"]: r["count"] for r in delta_io.read(spark, uri).where(F.col("score_date") == d)
               .groupBy("risk_band").count().collect()}

    drift = _record_drift(spark, settings, frame, mv, run_date, run_id)
    frame.unpersist()
    realized = _record_realized(spark, settings, run_date, run_id)
    result = {"run_date": run_date.isoformat(), "run_id": run_id, "scored": n, "model_version": str(mv.version),
              "threshold": threshold, "risk_bands": by_band, "scores_version": delta_io.latest_version(spark, uri),
              "feature_versions": retrieval.table_versions, "max_psi": max(drift.values()) if drift else None,
              "retrain_flag": bool(drift) and max(drift.values()) > settings.model.drift_psi_threshold,
              "realized": realized}
    log.info("scored %d customers for %s with %s v%s: %s; max PSI %s%s", n, run_date, settings.model.name,
             mv.version, by_band, result["max_psi"], " -> RETRAIN flagged" if result["retrain_flag"] else "")
    return result


def _record_drift(spark, settings, frame, mv, run_date, run_id) -> dict[str, float]:
    import mlflow

    try:
        path = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path="drift_reference.json",
                                                   tracking_uri=tracking.tracking_uri(settings))
    except Exception as exc:  # noqa: BLE001 - a model without a reference cannot be checked; say so
        log.warning("no drift reference for %s v%s (%s); drift not computed", settings.model.name, mv.version, exc)
        return {}
    with open(path) as fh:
        reference = json.load(fh)
    drift = feature_drift(frame, reference)
    limit = settings.model.drift_psi_threshold
    rows = [(run_date, k, float(v), v > limit, str(mv.version), run_id) for k, v in sorted(drift.items())]
    schema = T.StructType([T.StructField("score_date", T.DateType()), T.StructField("feature", T.StringType()),
                           T.StructField("psi", T.DoubleType()), T.StructField("drifted", T.BooleanType()),
                           T.StructField("model_version", T.StringType()), T.StructField("run_id", T.StringType())])
    delta_io.replace_partition(spark.createDataFrame(rows, schema), table_uri(settings, "ops", "feature_drift"),
                               "score_date", run_date.isoformat(),
                               delta_io.commit_metadata(run_id, "score", run_date.isoformat()))
    flagged = {k: v for k, v in drift.items() if v > limit}
    if flagged:
        log.warning("feature drift over PSI %.2f on %s: %s: retraining flagged", limit, run_date, flagged)
    return drift


def _record_realized(spark, settings, run_date, run_id) -> dict | None:
    """AUCs of the scores made H days ago, now that their labels exist."""
    scored_on = run_date - dt.timedelta(days=settings.gold.label_horizon_days)
    s_uri, l_uri = table_uri(settings, "gold", SCORES), table_uri(settings, "gold", LABELS)
    if not delta_io.is_delta(spark, l_uri):
        return None
    joined = (delta_io.read(spark, s_uri).where(F.col("score_date") == F.lit(scored_on))
              .join(delta_io.read(spark, l_uri).where(F.col("snapshot_date") == F.lit(scored_on))
                    .select("customer_id", "churned"), "customer_id").select("probability", "churned", "model_version")
              .toPandas())
    if joined.empty:
        return None
    y, p = joined["churned"].to_numpy(), joined["probability"].to_numpy()
    row = {"score_date": scored_on, "evaluated_on": run_date, "rows": int(len(y)), "churned": int(y.sum()),
           "roc_auc": M.roc_auc(y, p), "pr_auc": M.pr_auc(y, p),
           "model_version": str(joined["model_version"].iloc[0]), "run_id": run_id}
    df = spark.createDataFrame([row], "score_date date, evaluated_on date, rows long, churned long, roc_auc double, "
                                      "pr_auc double, model_version string, run_id string")
    delta_io.replace_partition(df, table_uri(settings, "ops", "model_performance"), "score_date",
                               scored_on.isoformat(), delta_io.commit_metadata(run_id, "score", run_date.isoformat()))
    log.info("realized performance of the %s scores: ROC AUC %.4f on %d customers (%d churned)", scored_on,
             row["roc_auc"], row["rows"], row["churned"])
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}
