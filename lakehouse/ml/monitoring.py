"""Monitoring a model in service: feature drift against its training data, and realized performance.

* Drift: at training, each numeric feature's decile edges and training shares are stored with the
  model (``drift_reference``); at scoring, the population stability index of each feature between
  that reference and the date's scoring rows goes to ``ops/feature_drift``, and any PSI above
  ``model.drift_psi_threshold`` flags retraining (``drifted_features``, read by ``ml.train.train_if_flagged``).
* Realized performance: once labels for an earlier score date have matured, the ROC AUC and PR AUC of
  those scores against what happened -> ``ops/model_performance``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.ml import metrics as M
from lakehouse.ml import tracking

log = logging.getLogger(__name__)


def scoring_reference_rows(spark, settings, run_date: dt.date, latest: int, refs: list[str]) -> DataFrame:
    """The feature rows scoring would read on the ``latest`` most recent snapshot dates up to
    ``run_date`` (labelled or not): the reference a model trained on ``run_date`` is compared with.

    Labelled snapshots are at least the label horizon old when a model is trained: on a young lake
    their 30- to 90-day windows are still filling (``sessions_prev_30d`` is 0 for everyone in the
    first 30 days) and a price change since then moves ``monthly_price``; against them a model
    trained today would be flagged on its first scoring. Today's rows are what it scores next."""
    from lakehouse import delta_io, tables
    from lakehouse.featurestore.store import get_historical_features

    features = delta_io.read(spark, tables.FEATURES.uri(settings))
    upto = features.where(F.col("snapshot_date") <= F.lit(run_date.isoformat()).cast("date"))
    dates = [r[0] for r in upto.select("snapshot_date").distinct().orderBy(F.col("snapshot_date").desc())
             .limit(latest).collect()]
    rows = upto.where(F.col("snapshot_date").isin(dates)).select("customer_id", F.col("snapshot_date").alias("as_of"))
    frame, _ = get_historical_features(spark, settings, rows, refs, plain_names=True)
    return frame


def drift_reference(frame: DataFrame, numeric: list[str], bins: int = 10) -> dict:
    """Per numeric feature: decile edges and the training share in each bin (for PSI at scoring)."""
    probs = [i / bins for i in range(1, bins)]
    quantiles = frame.approxQuantile(numeric, probs, 0.001)
    edges = {col: sorted(set(float(e) for e in col_edges)) for col, col_edges in zip(numeric, quantiles)}
    ref = {}
    for col, counts in bin_counts(frame, edges).items():
        total = sum(counts) or 1
        ref[col] = {"edges": edges[col], "shares": [c / total for c in counts]}
    return ref


def bin_counts(frame: DataFrame, edges: dict[str, list[float]]) -> dict[str, list[int]]:
    """Rows per bin of each column, in one pass: (-inf, e0], (e0, e1], ..., (e_last, inf), nulls as
    one more bin. ``edges`` maps column -> ascending edges."""
    if not edges:
        return {}
    cells = []
    for col, col_edges in edges.items():
        b = F.lit(len(col_edges))
        for i in reversed(range(len(col_edges))):
            b = F.when(F.col(col) <= F.lit(col_edges[i]), F.lit(i)).otherwise(b)
        b = F.when(F.col(col).isNull(), F.lit(len(col_edges) + 1)).otherwise(b)
        cells.append(F.struct(F.lit(col).alias("c"), b.alias("b")))
    got: dict[tuple[str, int], int] = {
        (r["c"], r["b"]): r["count"]
        for r in frame.select(F.explode(F.array(*cells)).alias("x")).groupBy("x.c", "x.b").count().collect()}
    return {col: [int(got.get((col, i), 0)) for i in range(len(col_edges) + 2)] for col, col_edges in edges.items()}


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


def record_drift(spark, settings, frame, mv, run_date, run_id) -> dict[str, float]:
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
    delta_io.replace_partition(spark.createDataFrame(rows, schema), tables.FEATURE_DRIFT.uri(settings),
                               tables.FEATURE_DRIFT.partition, run_date.isoformat(),
                               delta_io.commit_metadata(run_id, "score", run_date.isoformat()))
    flagged = {k: v for k, v in drift.items() if v > limit}
    if flagged:
        log.warning("feature drift over PSI %.2f on %s: %s: retraining flagged", limit, run_date, flagged)
    return drift


def record_realized(spark, settings, run_date, run_id) -> dict | None:
    """AUCs of the scores made H days ago, now that their labels exist."""
    scored_on = run_date - dt.timedelta(days=settings.gold.label_horizon_days)
    s_uri, l_uri = tables.SCORES.uri(settings), tables.LABELS.uri(settings)
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
    delta_io.replace_partition(df, tables.MODEL_PERFORMANCE.uri(settings), tables.MODEL_PERFORMANCE.partition,
                               scored_on.isoformat(), delta_io.commit_metadata(run_id, "score", run_date.isoformat()))
    log.info("realized performance of the %s scores: ROC AUC %.4f on %d customers (%d churned)", scored_on,
             row["roc_auc"], row["rows"], row["churned"])
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}


def drifted_features(spark: SparkSession, settings: Settings, run_date: dt.date) -> list[str]:
    """The features whose drift the scoring of ``run_date`` flagged (none when it recorded no drift)."""
    uri = tables.FEATURE_DRIFT.uri(settings)
    if not delta_io.is_delta(spark, uri):
        return []
    return [r["feature"] for r in delta_io.read(spark, uri)
            .where((F.col("score_date") == F.lit(run_date)) & F.col("drifted")).collect()]
