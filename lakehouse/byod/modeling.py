"""Models of a profile run: tuned candidates beside a plain baseline of each algorithm and the prior.

Every run trains, on the same split:

- each algorithm tuned by cross-validation over ``model.grid`` plus the plain baseline's own settings
  (so tuning can only pick something at least as good in cross-validation), within the profile's time
  budget;
- each algorithm's plain baseline with fixed, commonly used settings (``PLAIN``), untuned;
- the prior: every row scored with the training churn rate (ROC AUC 0.5; its Brier score is the
  floor a useful model must beat).

The registered model is the best of the tuned and plain models by evaluation ROC AUC. Rows weigh the
same unless the profile asks for balanced class weights, so scores are probabilities; the decision
threshold follows from the profile's ``business`` (or conf's ``model.costs``).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
from pyspark.sql import DataFrame

from lakehouse.byod.profile import Profile
from lakehouse.config import CostConfig, Settings
from lakehouse.ml import metrics as M

log = logging.getLogger(__name__)

# the plain baselines: fixed settings a data scientist would start from
PLAIN = {"logistic_regression": {"maxIter": 100, "regParam": 0.01},
         "random_forest": {"numTrees": 200, "maxDepth": 8},
         "gbt": {"maxIter": 100, "maxDepth": 4}}
PRIOR = "prior"


def plain_name(algo: str) -> str:
    return f"plain_{algo}"


def business(settings: Settings, profile: Profile) -> tuple[CostConfig | None, float | None, str]:
    """(costs, target contact rate, where they come from) for the decision threshold."""
    b = profile.business
    if b is None:
        c = settings.model.costs
        return c, None, (f"conf model.costs (value of a saved customer {c.saved_customer_value}, cost of a contact "
                         f"{c.offer_cost}, offer success {c.offer_success_rate}): the simulated business's; set "
                         "`business:` in the profile for yours")
    costs = None
    if b.contact_cost is not None:
        costs = CostConfig(offer_cost=b.contact_cost, saved_customer_value=b.saved_customer_value,
                           offer_success_rate=b.offer_success_rate)
    if b.target_contact_rate is not None:
        return costs, b.target_contact_rate, f"the profile's target contact rate {b.target_contact_rate:.0%}"
    return costs, None, (f"the profile's business values (saved customer {b.saved_customer_value}, contact "
                         f"{b.contact_cost}, offer success {b.offer_success_rate})")


def _plain_classifier(algo: str, seed: int):
    from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier

    cls = {"logistic_regression": LogisticRegression, "random_forest": RandomForestClassifier,
           "gbt": GBTClassifier}[algo]
    clf = cls(labelCol="label", **PLAIN[algo])
    return clf.setSeed(seed) if clf.hasParam("seed") else clf


def fit_plain(train: DataFrame, evaluation: DataFrame, numeric: list[str], categorical: list[str], algo: str,
              seed: int, costs, contact_rate: float | None, plot_dir: Path):
    """The plain baseline of ``algo`` (unweighted, untuned), evaluated like the tuned ones."""
    import mlflow

    from lakehouse.ml import preprocess
    from lakehouse.ml.train import _importances

    t0 = time.perf_counter()
    model = preprocess.pipeline(numeric, categorical, _plain_classifier(algo, seed)).fit(train)
    y, p = M.probabilities(model, evaluation)
    m = M.evaluate(y, p, costs, contact_rate, seed)
    m["fit_seconds"] = round(time.perf_counter() - t0, 1)
    name = plain_name(algo)
    with mlflow.start_run(run_name=name, nested=True) as child:
        mlflow.log_params({"algorithm": algo, "plain_baseline": True, **PLAIN[algo]})
        mlflow.log_metrics({k: v for k, v in m.items() if isinstance(v, (int, float)) and not math.isnan(v)})
        for path in M.plots(y, p, m, _importances(model, numeric, categorical), name, plot_dir / name):
            mlflow.log_artifact(str(path), "plots")
        m["mlflow_run_id"] = child.info.run_id
    log.info("%s: evaluation ROC AUC %.4f [%.4f, %.4f], Brier %.4f (%.0fs)", name, m["roc_auc"], m["roc_auc_low"],
             m["roc_auc_high"], m["brier"], m["fit_seconds"])
    return m, model


def prior(train_rate: float, evaluation: DataFrame, costs, contact_rate: float | None, seed: int) -> dict:
    """Every evaluation row scored with the training churn rate."""
    y = evaluation.select("label").toPandas()["label"].to_numpy(dtype=int)
    return M.evaluate(y, np.full(len(y), train_rate), costs, contact_rate, seed)


def train_all(settings: Settings, profile: Profile, train: DataFrame, evaluation: DataFrame, numeric: list[str],
              categorical: list[str], train_rows: int, train_rate: float, plot_dir: Path) -> tuple[dict, dict, dict]:
    """Tuned, plain and prior, inside the caller's MLflow parent run. Returns (metrics by name, fitted
    models by name, notes: the threshold's source, skipped algorithms, which large candidates joined)."""
    from lakehouse.ml.train import cv_sample, fit_algorithms

    spec = profile.training
    costs, rate, source = business(settings, profile)
    large = train_rows <= spec.large_candidates_max_rows
    extra = {a: [PLAIN[a]] for a in spec.algorithms if large or a == "logistic_regression"}
    deadline = time.perf_counter() + spec.time_budget_minutes * 60 if spec.time_budget_minutes else None
    results: dict[str, dict] = {}
    models: dict = {}
    skipped: list[str] = []
    # beyond model.max_cv_rows, candidates are compared on a stratified sample and the chosen one is
    # fitted on every training row, as the pipeline's training does
    cv_rows_info = {"train": train_rows}
    cv_rows = cv_sample(train, cv_rows_info, settings.model.max_cv_rows, profile.evaluation.seed)
    for algo in spec.algorithms:
        if deadline is not None and results and time.perf_counter() > deadline:
            skipped.append(algo)
            log.warning("profile %s: time budget of %s minutes spent; %s is not tuned (its plain baseline still "
                        "runs)", profile.name, spec.time_budget_minutes, algo)
            continue
        r, mdl = fit_algorithms(train, evaluation, numeric, categorical, [algo], spec.cv_folds, profile.evaluation.seed,
                                costs, plot_dir, settings.model.sizes, settings.model.grid,
                                settings.model.cv_parallelism, extra, rate, cv_rows)
        results.update(r)
        models.update(mdl)
    for algo in spec.algorithms:
        m, mdl = fit_plain(train, evaluation, numeric, categorical, algo, profile.evaluation.seed, costs, rate,
                           plot_dir)
        results[plain_name(algo)] = m
        models[plain_name(algo)] = mdl
    results[PRIOR] = prior(train_rate, evaluation, costs, rate, profile.evaluation.seed)
    if cv_rows is not None:
        cv_rows.unpersist()
    notes = {"threshold_source": source, "skipped": skipped,
             "large_candidates": sorted(extra) if large else ["logistic_regression"],
             "large_candidates_max_rows": spec.large_candidates_max_rows,
             "cv_rows": cv_rows_info.get("cv_sampled"), "cv_fraction": cv_rows_info.get("cv_fraction"),
             "max_cv_rows": settings.model.max_cv_rows}
    return results, models, notes


def champion(results: dict) -> str:
    """The best fitted model (tuned or plain; never the prior) by evaluation ROC AUC."""
    fitted = {k: v for k, v in results.items() if k != PRIOR}
    return max(fitted, key=lambda a: fitted[a]["roc_auc"] if not math.isnan(fitted[a]["roc_auc"]) else -1)
