"""Train, compare and register churn models (``jobs/train.py``); the champion gate is ``ml.promotion``,
drift and realized performance ``ml.monitoring``.

1. Training set from the feature store: labelled snapshots known by the run date, point-in-time features.
2. Out-of-time split: the latest ``eval_fraction`` of snapshot dates evaluate; earlier ones train.
3. Per algorithm: a pipeline (preprocessing stages + classifier, weighted for class imbalance) tuned by
   k-fold cross-validation on the training part (ROC AUC), refitted, then scored on the evaluation dates.
4. MLflow: a parent run (training set, Delta versions, code version, report) and a child run per
   algorithm (params, metrics, plots); the best is logged as a Spark model with signature and input
   example and registered. It takes the ``champion`` alias only if it beats the current champion on
   the same evaluation rows by ``champion_margin``; otherwise it is registered as ``challenger``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import PROJECT_ROOT, ModelGrids, ModelSizes, Settings
from lakehouse.errors import LakehouseError
from lakehouse.ml import lineage, monitoring, preprocess, promotion, tracking
from lakehouse.ml import metrics as M
from lakehouse.ml.dataset import TrainingSet, build_training_set
from lakehouse.spark import compiled_everywhere, interpreted

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_date: str
    run_id: str                       # MLflow parent run
    train_dates: list[str]
    eval_dates: list[str]
    rows: dict[str, int]
    metrics: dict[str, dict[str, float]]
    best: str
    registered_version: str
    champion_version: str
    promoted: bool
    champion_metric_before: float | None
    table_versions: dict[str, int]
    feature_refs: list[str]
    report: str
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def classifier(name: str, seed: int, sizes: ModelSizes, grids: ModelGrids, extra: list[dict] | None = None):
    """The classifier and its cross-validation grid (``model.grid.<name>``: every combination), plus
    the ``extra`` candidates (parameter name -> value), each tried as given."""
    from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier
    from pyspark.ml.tuning import ParamGridBuilder

    if name == "logistic_regression":
        clf = LogisticRegression(labelCol="label", weightCol="weight", maxIter=50)
    elif name == "random_forest":
        clf = RandomForestClassifier(labelCol="label", weightCol="weight", numTrees=sizes.forest_trees, seed=seed,
                                     featureSubsetStrategy="sqrt")
    elif name == "gbt":
        clf = GBTClassifier(labelCol="label", weightCol="weight", maxIter=sizes.boosting_rounds, stepSize=0.1, seed=seed)
    else:
        raise LakehouseError(f"unknown algorithm {name!r}")
    builder = ParamGridBuilder()
    for param, values in getattr(grids, name).items():
        if not clf.hasParam(param):
            raise LakehouseError(f"model.grid.{name}: {param!r} is not a parameter of {type(clf).__name__}")
        p = clf.getParam(param)
        try:  # the type Spark wants (1 -> 1.0 for a fraction), so a wrong value fails here, named
            builder = builder.addGrid(p, [p.typeConverter(v) for v in values])
        except TypeError as exc:
            raise LakehouseError(f"model.grid.{name}.{param}: {exc}") from None
    grid = builder.build()
    for candidate in extra or []:
        params = {clf.getParam(k): clf.getParam(k).typeConverter(v) for k, v in candidate.items()}
        if params not in grid:
            grid.append(params)
    return clf, grid


def _importances(model, numeric: list[str], categorical: list[str]) -> list[tuple[str, float]]:
    names = preprocess.feature_names(model.stages, numeric, categorical)
    clf = model.stages[-1]
    values = (clf.coefficients.toArray() if hasattr(clf, "coefficients") else clf.featureImportances.toArray())
    if len(names) != len(values):
        raise LakehouseError(f"{len(names)} feature names for {len(values)} model inputs: the names would be "
                             "misaligned (preprocess.feature_names)")
    return list(zip(names, [float(v) for v in values]))


def _code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def split_dates(dates: list[dt.date], eval_fraction: float) -> tuple[list[dt.date], list[dt.date]]:
    n_eval = max(1, math.ceil(len(dates) * eval_fraction))
    if len(dates) - n_eval < 1:
        raise LakehouseError(f"{len(dates)} snapshot date(s) cannot be split into train and evaluation")
    return dates[:-n_eval], dates[-n_eval:]


def _report(result_metrics: dict, best: str, ts: TrainingSet, train_dates, eval_dates, rows, promoted,
            champion_before, registered, champion_version, settings: Settings, run_id: str) -> str:
    lines = [f"# Churn model report: run {run_id}", "",
             f"- Training snapshots: {len(train_dates)} dates, {train_dates[0]} .. {train_dates[-1]} "
             f"({rows['train']} rows, {rows['train_positives']} churned)",
             *([f"- Training rows sampled for fitting: {rows['train_sampled']} of {rows['train']} (fraction "
                f"{rows['sample_fraction']}, the same for churners and stayers; `model.max_training_rows` is "
                f"{settings.model.max_training_rows}): cross-validation gains little from more rows and its time "
                "grows with them. Evaluation uses every row."] if "train_sampled" in rows else []),
             *([f"- Cross-validation compared each algorithm's candidates on {rows['cv_sampled']} of those rows "
                f"(fraction {rows['cv_fraction']}, stratified by label; `model.max_cv_rows` is "
                f"{settings.model.max_cv_rows}); the chosen candidate was then fitted on all of them."]
               if "cv_sampled" in rows else []),
             f"- Out-of-time evaluation: {len(eval_dates)} dates, {eval_dates[0]} .. {eval_dates[-1]} "
             f"({rows['eval']} rows, {rows['eval_positives']} churned)",
             f"- Label: churn within {settings.gold.label_horizon_days} days of the snapshot; "
             f"features: {len(ts.feature_columns)} from view `{settings.model.view}`",
             f"- Costs: offer {settings.model.costs.offer_cost}, saved customer "
             f"{settings.model.costs.saved_customer_value}, offer success {settings.model.costs.offer_success_rate}",
             "", *metrics_table(result_metrics, best)]
    lines += ["", f"Selection metric: `{settings.model.selection_metric}`. Registered `{settings.model.name}` "
              f"version {registered}; " + (
                  f"promoted to `@champion` (previous champion on this window: "
                  f"{'none' if champion_before is None else f'{champion_before:.4f}'})." if promoted else
                  f"kept as `@challenger`: champion version {champion_version} scores {champion_before:.4f} on "
                  f"the same window and the margin is {settings.model.champion_margin}."),
              "", "Plots (ROC, PR, calibration, confusion matrix, feature importance) are in each algorithm's "
              "MLflow run under `plots/`.", ""]
    return "\n".join(lines)


def cross_validate(train: DataFrame, numeric: list[str], categorical: list[str], algo: str, cv_folds: int,
                   seed: int, sizes: ModelSizes, grids: ModelGrids, parallelism: int = 1,
                   extra: list[dict] | None = None):
    """``algo``'s pipeline (preprocessing + classifier) tuned by k-fold cross-validation on ``train``
    (ROC AUC) over its ``model.grid`` candidates, the best refitted on all of ``train``; up to
    ``parallelism`` candidates are fitted at once (threads of this application; ``model.cv_parallelism``).
    Returns (the CrossValidatorModel, the candidates)."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator

    evaluator = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="probability",
                                              metricName="areaUnderROC")
    clf, grid = classifier(algo, seed, sizes, grids, extra)
    cv = CrossValidator(estimator=preprocess.pipeline(numeric, categorical, clf), estimatorParamMaps=grid,
                        evaluator=evaluator, numFolds=cv_folds, seed=seed, parallelism=parallelism)
    return cv.fit(train), grid


def fit_partitions(frame: DataFrame) -> DataFrame:
    """``frame`` in at most as many partitions as the application has cores, for fitting.

    Every iteration of a fit (an optimizer step, a tree level, a boosting round) is a Spark job with a
    task per partition, and the training set comes out of the shuffles that built it (4 partitions in
    local mode): on 2 cores two waves of small tasks per job. Merged to 2 (no shuffle), a warm
    cross-validation of all three algorithms took 51.1 s instead of 59.0 s at 7,000 training rows and
    79.3 s instead of 95.2 s at 70,000 (2026-11-29; ``cv_parallelism`` 1). A cluster with more cores
    than partitions keeps the partitions it has."""
    return frame.coalesce(frame.sparkSession.sparkContext.defaultParallelism)


def weighted_split(frame: DataFrame, train_dates: list[dt.date], eval_dates: list[dt.date]
                   ) -> tuple[DataFrame, DataFrame, dict[str, int], float]:
    """(training rows with a ``weight`` column for class imbalance, cached; evaluation rows, cached;
    row and positive counts of each; the positive class's weight). Raises if a part has no churner.
    Both parts are in ``fit_partitions``."""
    frame = fit_partitions(frame)
    train = frame.where(F.col("as_of") <= F.lit(train_dates[-1]))
    evaluation = frame.where(F.col("as_of") >= F.lit(eval_dates[0]))
    counts = {r["split"]: (r["n"], r["pos"]) for r in frame.groupBy(
        F.when(F.col("as_of") <= F.lit(train_dates[-1]), "train").otherwise("eval").alias("split"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("pos")).collect()}
    rows = {"train": counts["train"][0], "train_positives": int(counts["train"][1]),
            "eval": counts["eval"][0], "eval_positives": int(counts["eval"][1])}
    if rows["train_positives"] == 0 or rows["eval_positives"] == 0:
        raise LakehouseError(f"no churned customers in the {'training' if not rows['train_positives'] else 'evaluation'}"
                             f" snapshots ({rows}); more labelled dates are needed")
    pos_weight = (rows["train"] - rows["train_positives"]) / rows["train_positives"]
    train = train.withColumn("weight", F.when(F.col("label") == 1, F.lit(pos_weight)).otherwise(F.lit(1.0))).cache()
    return train, evaluation.cache(), rows, pos_weight


def _stratified(frame: DataFrame, fraction: float, seed: int) -> DataFrame:
    """``frame`` sampled at ``fraction`` for churners and stayers alike (the class ratio holds), cached."""
    return frame.sampleBy("label", {0: fraction, 1: fraction}, seed).cache()


def cap_training_rows(train: DataFrame, rows: dict[str, int], max_rows: int, seed: int) -> DataFrame:
    """``train`` sampled to about ``max_rows`` rows when it holds more (0: never), stratified by label:
    churners and stayers at the same fraction, so the class ratio (and the weights) hold. ``rows``
    gains ``train_sampled`` and ``sample_fraction``; the sample is cached and the full rows released."""
    if not max_rows or rows["train"] <= max_rows:
        return train
    fraction = max_rows / rows["train"]
    sample = _stratified(train, fraction, seed)
    rows["train_sampled"] = sample.count()
    rows["sample_fraction"] = round(fraction, 6)
    train.unpersist()
    log.info("training rows sampled: %d of %d (fraction %.4f, stratified by label; model.max_training_rows %d)",
             rows["train_sampled"], rows["train"], fraction, max_rows)
    return sample


def cv_sample(train: DataFrame, rows: dict[str, int], max_rows: int, seed: int) -> DataFrame | None:
    """The rows cross-validation chooses candidates on when ``train`` holds more than ``max_rows`` (0:
    never; returns None): a sample stratified by label like ``cap_training_rows``'s, cached. ``rows``
    gains ``cv_sampled`` and ``cv_fraction``. The chosen candidate is refitted on all of ``train``."""
    n = rows.get("train_sampled", rows["train"])
    if not max_rows or n <= max_rows:
        return None
    fraction = max_rows / n
    sample = _stratified(train, fraction, seed + 1)
    rows["cv_sampled"] = sample.count()
    rows["cv_fraction"] = round(fraction, 6)
    log.info("cross-validation on %d of %d training rows (fraction %.4f, stratified by label; model.max_cv_rows "
             "%d); the chosen candidates are refitted on all of them", rows["cv_sampled"], n, fraction, max_rows)
    return sample


def fit_algorithms(train: DataFrame, evaluation: DataFrame, numeric: list[str], categorical: list[str],
                   algorithms: list[str], cv_folds: int, seed: int, costs, plot_dir: Path,
                   sizes: ModelSizes, grids: ModelGrids, parallelism: int = 1,
                   extra: dict[str, list[dict]] | None = None, contact_rate: float | None = None,
                   cv_rows: DataFrame | None = None) -> tuple[dict, dict]:
    """Tune each algorithm by k-fold CV on ``train`` (ROC AUC) over its grid and its ``extra``
    candidates, score ``evaluation`` (with a bootstrap interval of the ROC AUC), log a nested MLflow run
    per algorithm (params, metrics, plots). Returns (metrics by algorithm, models).

    With ``cv_rows`` (a sample of ``train``, ``cv_sample``) the candidates are compared on it and the
    best is then fitted on all of ``train``. (``CrossValidator`` also refits the best on the sample, a
    fit its API has no switch for; a ``foldCol`` cannot leave rows out of every fold.)"""
    import mlflow

    results: dict[str, dict] = {}
    models = {}
    for algo in algorithms:
        t0 = time.perf_counter()
        cv_model, grid = cross_validate(train if cv_rows is None else cv_rows, numeric, categorical, algo,
                                        cv_folds, seed, sizes, grids, parallelism, (extra or {}).get(algo))
        best_params = grid[int(np.argmax(cv_model.avgMetrics))]
        model = cv_model.bestModel
        if cv_rows is not None:  # the chosen candidate, as CrossValidator refits it, on every training row
            model = cv_model.getEstimator().fit(train, best_params)
        y, p = M.probabilities(model, evaluation)
        m = M.evaluate(y, p, costs, contact_rate, seed)
        m["cv_roc_auc"] = float(max(cv_model.avgMetrics))
        m["fit_seconds"] = round(time.perf_counter() - t0, 1)
        with mlflow.start_run(run_name=algo, nested=True) as child:
            mlflow.log_params({"algorithm": algo, **{p_.name: v for p_, v in best_params.items()}})
            mlflow.log_metrics({k: v for k, v in m.items() if isinstance(v, (int, float)) and not math.isnan(v)})
            for path in M.plots(y, p, m, _importances(model, numeric, categorical), algo, plot_dir / algo):
                mlflow.log_artifact(str(path), "plots")
            m["mlflow_run_id"] = child.info.run_id
        results[algo] = m
        models[algo] = model
        log.info("%s: evaluation ROC AUC %.4f, PR AUC %.4f, CV ROC AUC %.4f (%.0fs)", algo, m["roc_auc"],
                 m["pr_auc"], m["cv_roc_auc"], m["fit_seconds"])
    return results, models


METRIC_KEYS = ["roc_auc", "pr_auc", "threshold", "expected_value", "accuracy", "precision", "recall", "f1",
               "lift_top_decile", "capture_top_decile"]


def metrics_table(results: dict, best: str) -> list[str]:
    """Markdown table rows: one per algorithm, the best marked."""
    lines = ["| algorithm | " + " | ".join(METRIC_KEYS) + " |", "|---" * (len(METRIC_KEYS) + 1) + "|"]
    for algo, m in results.items():
        mark = " (best)" if algo == best else ""
        lines.append(f"| {algo}{mark} | " + " | ".join(f"{m[k]:.4f}" for k in METRIC_KEYS) + " |")
    return lines


def train_models(spark: SparkSession, settings: Settings, run_date: dt.date, run_id: str | None = None,
                 versions: dict[str, int] | None = None) -> TrainResult:
    started = time.perf_counter()
    cfg = settings.model
    tracking.setup(settings)
    client = tracking.client(settings)
    ts = build_training_set(spark, settings, run_date, versions=versions)
    train_dates, eval_dates = split_dates(ts.dates, cfg.eval_fraction)
    # cross-validation passes over the training rows many times, and the point-in-time join that builds
    # them is a large query: a large training set is built, fitted and evaluated with Spark's code
    # generation where SQL runs interpreted (decided on the labelled rows, before any sampling)
    labelled = ts.labels.count()
    compiled = cfg.compile_min_rows is not None and labelled >= cfg.compile_min_rows and interpreted(spark)
    if compiled:
        log.info("%d labelled rows (training and evaluation) >= model.compile_min_rows %d: built, fitted and "
                 "evaluated with Spark SQL code generation", labelled, cfg.compile_min_rows)
    with compiled_everywhere(spark, compiled):
        return _train(spark, settings, ts, run_date, train_dates, eval_dates, run_id, client, started)


def _train(spark: SparkSession, settings: Settings, ts, run_date: dt.date, train_dates: list[dt.date],
           eval_dates: list[dt.date], run_id: str | None, client, started: float) -> TrainResult:
    """``train_models`` once the training set is defined: split, sample, fit, register, promote."""
    import mlflow

    cfg = settings.model
    frame = ts.frame.cache()
    train, evaluation, rows, pos_weight = weighted_split(frame, train_dates, eval_dates)
    train = cap_training_rows(train, rows, cfg.max_training_rows, cfg.seed)
    cv_rows = cv_sample(train, rows, cfg.max_cv_rows, cfg.seed)
    content, customer_parts = lineage.content_by_customer(settings, frame)
    log.info("training set: %s; %d features; positive class weight %.1f; content %s", rows, len(ts.feature_columns),
             pos_weight, content)

    with mlflow.start_run(run_name=f"train-{run_date}") as parent, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"run_date": run_date.isoformat(), "code_version": _code_version(),
                         "pipeline_run_id": run_id or "", "env": settings.env})
        mlflow.log_params({"label_horizon_days": settings.gold.label_horizon_days,
                           "train_dates": f"{train_dates[0]}..{train_dates[-1]} ({len(train_dates)})",
                           "eval_dates": f"{eval_dates[0]}..{eval_dates[-1]} ({len(eval_dates)})",
                           "positive_class_weight": round(pos_weight, 3), "cv_folds": cfg.cv_folds,
                           "cv_parallelism": cfg.cv_parallelism,
                           "drift_reference_dates": cfg.drift_reference_dates,
                           "forest_trees": cfg.sizes.forest_trees, "boosting_rounds": cfg.sizes.boosting_rounds,
                           **{f"table_version.{t}": v for t, v in ts.retrieval.table_versions.items()}})
        mlflow.log_metrics({f"rows_{k}": v for k, v in rows.items()})
        mlflow.log_dict({"dates": [d.isoformat() for d in ts.dates], "train_dates": [d.isoformat() for d in train_dates],
                         "eval_dates": [d.isoformat() for d in eval_dates], **ts.retrieval.as_dict(),
                         "content": content},
                        "training_set.json")
        if customer_parts is not None:
            mlflow.log_dict(customer_parts, lineage.CUSTOMER_CHECKSUMS)
        results, models = fit_algorithms(train, evaluation, ts.numeric, ts.categorical, cfg.algorithms,
                                         cfg.cv_folds, cfg.seed, cfg.costs, Path(tmp), cfg.sizes, cfg.grid,
                                         cfg.cv_parallelism, cv_rows=cv_rows)

        best = max(results, key=lambda a: results[a][cfg.selection_metric])
        best_model = models[best]
        reference = monitoring.drift_reference(monitoring.scoring_reference_rows(
            spark, settings, run_date, cfg.drift_reference_dates, [f"{cfg.view}:{r}" for r in ts.retrieval.features]),
                                               [c for c in ts.numeric if c not in cfg.drift_exclude])
        example = train.select(*ts.feature_columns).limit(5).toPandas()
        with mlflow.start_run(run_id=results[best]["mlflow_run_id"], nested=True):
            info = tracking.log_spark_model(settings, best_model, example, cfg.name)
            mlflow.log_dict(reference, "drift_reference.json")
        version = str(info.registered_model_version)
        best_metrics = results[best]
        client.set_model_version_tag(cfg.name, version, "threshold", str(best_metrics["threshold"]))
        client.set_model_version_tag(cfg.name, version, "algorithm", best)
        client.set_model_version_tag(cfg.name, version, "train_run_id", parent.info.run_id)
        lineage.tag_content(client, cfg.name, version, content)
        mlflow.log_dict(lineage.record(cfg.name, version, ts.dates, ts.retrieval, content, _code_version(),
                                       customer_parts is not None),
                        "lineage.json")
        client.set_model_version_tag(cfg.name, version, "eval_window", f"{eval_dates[0]}..{eval_dates[-1]}")
        client.set_model_version_tag(cfg.name, version, cfg.selection_metric, f"{best_metrics[cfg.selection_metric]:.6f}")

        champion_before, champion_version = promotion.champion_score(settings, client, evaluation, cfg,
                                                                     ts.retrieval.table_versions)
        new_score = best_metrics[cfg.selection_metric]
        promoted, champion_version = promotion.promote(settings, client, version, new_score, champion_before,
                                                       champion_version)
        mlflow.log_metrics({"champion_metric_before": champion_before if champion_before is not None else -1,
                            "best_" + cfg.selection_metric: new_score, "promoted": int(promoted)})
        report = _report(results, best, ts, train_dates, eval_dates, rows, promoted, champion_before, version,
                         champion_version, settings, parent.info.run_id)
        mlflow.log_text(report, "model_report.md")
        parent_id = parent.info.run_id
    frame.unpersist()
    train.unpersist()
    evaluation.unpersist()
    if cv_rows is not None:
        cv_rows.unpersist()
    return TrainResult(run_date.isoformat(), parent_id, [d.isoformat() for d in train_dates],
                       [d.isoformat() for d in eval_dates], rows,
                       {a: {k: v for k, v in m.items() if k != "mlflow_run_id"} for a, m in results.items()},
                       best, version, champion_version, promoted, champion_before,
                       ts.retrieval.table_versions, ts.retrieval.features, report,
                       round(time.perf_counter() - started, 1))


def train_if_flagged(spark: SparkSession, settings: Settings, run_date: dt.date, run_id: str | None = None) -> dict:
    """Train when the date's scoring flagged drift, or when no champion exists yet; else say why not."""
    has_champion = promotion.has_champion(settings)
    drifted = monitoring.drifted_features(spark, settings, run_date)
    if has_champion and not drifted:
        log.info("no retraining for %s: champion in place and no feature drifted", run_date)
        return {"trained": False, "reason": "champion in place, no drift"}
    reason = f"drift on {sorted(drifted)}" if drifted else "no champion yet"
    try:
        result = train_models(spark, settings, run_date, run_id)
    except LakehouseError as exc:  # too few labelled snapshots yet: say so, the flag stays in ops/feature_drift
        log.warning("retraining wanted for %s (%s) but not possible: %s", run_date, reason, exc)
        return {"trained": False, "reason": f"{reason}; cannot train: {exc}"}
    return {"trained": True, "reason": reason, **result.as_dict()}
