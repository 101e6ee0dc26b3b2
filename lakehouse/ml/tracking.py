"""MLflow wiring: tracking URI and artifact root from config, the experiment per environment."""

from __future__ import annotations

from pathlib import Path

from lakehouse.config import Settings


def tracking_uri(settings: Settings) -> str:
    uri = settings.mlflow.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = settings.path(uri[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if uri.startswith("sqlite:////"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def artifact_location(settings: Settings) -> str:
    root = settings.mlflow.artifact_root
    if "://" in root:
        return root.rstrip("/")
    path = settings.path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve().as_uri()


def experiment_name(settings: Settings) -> str:
    return f"{settings.model.experiment_prefix}-{settings.env}"


def setup(settings: Settings, experiment: str | None = None):
    """Point MLflow at this environment's store and experiment (or ``experiment``); returns its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(settings))
    mlflow.set_registry_uri(tracking_uri(settings))
    name = experiment or experiment_name(settings)
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        exp_id = mlflow.create_experiment(name, artifact_location=f"{artifact_location(settings)}/{name}")
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def client(settings: Settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(settings), registry_uri=tracking_uri(settings))


def pip_requirements() -> list[str]:
    """The packages a logged model needs to load, pinned to the versions that trained it.

    Given explicitly: without them MLflow infers them by loading the model in a child Python process
    (with a Spark JVM of its own), about 30 s per logged model here."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "pyspark", "numpy", "pandas")]


def spark_tmpdir(settings: Settings) -> str:
    """Where MLflow's Spark flavour stages a model between Spark and the artifact store.

    MLflow saves a Spark model to a folder on Spark's file system first and copies it from there
    (loading goes the other way on a cluster). Its default, ``/tmp/mlflow``, is left behind on this
    machine and on a cluster resolves against HDFS's root; a folder of the lake is on the file system
    the jobs already write to, outside its zones (Spark's readers skip ``_`` folders). MLflow removes
    each model's folder once it is copied.
    """
    return f"{settings.lake_uri}/_scratch/mlflow"


def load_spark_model(settings: Settings, model_uri: str):
    import mlflow.spark

    return mlflow.spark.load_model(model_uri, dfs_tmpdir=spark_tmpdir(settings))


def log_spark_model(settings: Settings, model, example, registered_model_name: str):
    """Log a fitted Spark ``PipelineModel`` under ``model`` in the active run, register it, and return
    MLflow's ModelInfo. ``example`` (a few feature rows as pandas) gives the signature and input example."""
    import mlflow.spark
    import numpy as np
    from mlflow.models import infer_signature

    return mlflow.spark.log_model(model, artifact_path="model", input_example=example,
                                  signature=infer_signature(example, np.zeros(len(example))),
                                  registered_model_name=registered_model_name,
                                  pip_requirements=pip_requirements(), dfs_tmpdir=spark_tmpdir(settings))
