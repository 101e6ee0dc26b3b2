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
