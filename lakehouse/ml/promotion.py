"""The model registry's gate: which registered version is the ``champion`` that scores, and whether a
newly trained model takes that alias.

A new version becomes ``models:/<name>@champion`` only if its selection metric beats the current
champion's on the same out-of-time evaluation rows by ``model.champion_margin`` (the champion fed its
own features at their recorded versions); otherwise it is registered as ``@challenger``.
"""

from __future__ import annotations

import json
import logging

from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.ml import metrics as M
from lakehouse.ml import tracking

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"


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


def has_champion(settings: Settings) -> bool:
    """Whether a registered model version carries the champion alias."""
    from mlflow.exceptions import MlflowException

    tracking.setup(settings)
    try:
        tracking.client(settings).get_model_version_by_alias(settings.model.name, CHAMPION)
        return True
    except MlflowException:
        return False


def model_feature_refs(settings: Settings, client, mv) -> list[str]:
    """The feature references (``name@vN``) a registered model version was trained on."""
    run_id = mv.tags.get("train_run_id")
    if not run_id:
        raise LakehouseError(f"{mv.name} v{mv.version} has no train_run_id tag: cannot tell its features")
    with open(client.download_artifacts(run_id, "training_set.json")) as fh:
        return json.load(fh)["features"]


def model_inputs(spark: SparkSession, settings: Settings, client, mv, rows: DataFrame,
                 versions: dict[str, int] | None = None) -> DataFrame:
    """``rows`` (customer_id, as_of, ...) with the features *this model version* was trained on.

    The configured feature list may have changed since the champion was trained; the champion is
    always fed its own features at their recorded versions.
    """
    from lakehouse.featurestore.store import get_historical_features

    refs = model_feature_refs(settings, client, mv)
    frame, _ = get_historical_features(spark, settings, rows, [f"{settings.model.view}:{r}" for r in refs],
                                     versions=versions, plain_names=True)
    return frame


def champion_score(settings: Settings, client, evaluation: DataFrame, cfg,
                    versions: dict[str, int] | None = None) -> tuple[float | None, str | None]:
    """The current champion's selection metric on the same evaluation rows (None if no champion)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(cfg.name, CHAMPION)
    except MlflowException:
        return None, None
    model = tracking.load_spark_model(settings, f"models:/{cfg.name}@{CHAMPION}")
    rows = evaluation.select("customer_id", "as_of", "label")
    y, p = M.probabilities(model, model_inputs(evaluation.sparkSession, settings, client, mv, rows, versions))
    score = M.roc_auc(y, p) if cfg.selection_metric == "roc_auc" else M.pr_auc(y, p)
    return score, str(mv.version)


def promote(settings: Settings, client, version: str, new_score: float, champion_before: float | None,
            champion_version: str | None) -> tuple[bool, str | None]:
    """Give ``version`` the champion alias if it beats ``champion_before`` by the margin (or there is no
    champion), else the challenger alias. Returns (promoted, the champion's version now)."""
    cfg = settings.model
    promoted = champion_before is None or new_score > champion_before + cfg.champion_margin
    if promoted:
        client.set_registered_model_alias(cfg.name, CHAMPION, version)
        champion_version = version
    else:
        client.set_registered_model_alias(cfg.name, CHALLENGER, version)
    log.info("registered %s v%s (%.4f); champion before: %s -> %s", cfg.name, version, new_score,
             champion_before, "promoted" if promoted else "kept")
    return promoted, champion_version
