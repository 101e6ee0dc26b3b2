"""A registered model's training set, rebuilt and checked: ``lakehouse model training-set``.

Training records, in the run's ``training_set.json``, the snapshot dates, the feature versions and the
Delta version of every table it read, and, there and as tags of the registered version
(``training_rows``, ``training_checksum``), the row count and an order-insensitive content checksum
of the training rows. Rebuilding reads the same tables at the same versions (Delta time travel) and
compares. It works while retention keeps those versions (docs/versioning.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from lakehouse import delta_io
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

log = logging.getLogger(__name__)


def content(frame: DataFrame) -> dict:
    """Row count and content checksum of a training set (order-insensitive, every column)."""
    rows, checksum = delta_io.content_checksum(frame)
    return {"rows": rows, "checksum": checksum}


def record(name: str, version: str, dates: list[dt.date], retrieval, content: dict, code_version: str) -> dict:
    """The ``lineage.json`` artifact of a training run: which registered version it made and what
    rebuilding its training set needs (tables at versions, snapshot dates, feature versions) and gives
    (row count and content checksum); ``lakehouse model training-set`` and ``table vacuum`` read the
    same facts from ``training_set.json``."""
    return {"model": name, "version": str(version), "code_version": code_version,
            "tables": dict(retrieval.table_versions), "snapshot_dates": [d.isoformat() for d in dates],
            "features": list(retrieval.features), "training_rows": content["rows"],
            "training_checksum": content["checksum"],
            "rebuild": f"lakehouse model training-set {name}/{version}"}


def tag_content(client, name: str, version: str, recorded: dict) -> None:
    client.set_model_version_tag(name, version, "training_rows", str(recorded["rows"]))
    client.set_model_version_tag(name, version, "training_checksum", recorded["checksum"])


def model_version(client, spec: str, default_name: str):
    """``name@alias``, ``name/version``, ``@alias`` or ``name`` (its champion) -> the registered version."""
    from mlflow.exceptions import MlflowException

    name, alias, version = spec, None, None
    if "@" in spec:
        name, alias = spec.split("@", 1)
    elif "/" in spec:
        name, version = spec.split("/", 1)
    else:
        alias = "champion"
    name = name or default_name
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise LakehouseError(f"no registered model version {spec!r}: {str(exc).splitlines()[0]}") from None


@dataclass
class Rebuilt:
    model: str
    version: str
    train_run_id: str
    table_versions: dict[str, int]
    dates: list[str]
    recorded: dict | None
    rebuilt: dict
    equal: bool | None
    recorded_now: bool = False
    written_to: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def rebuild_training_set(spark: SparkSession, settings: Settings, client, mv, out: Path | None = None) -> Rebuilt:
    """Rebuild ``mv``'s recorded training set from the recorded table versions and compare its content
    with the recorded checksum; a version trained before checksums were recorded gets them now."""
    from lakehouse.ml.dataset import build_training_set

    run_id = mv.tags.get("train_run_id")
    if not run_id:
        raise LakehouseError(f"{mv.name} v{mv.version} has no train_run_id tag: not trained by this pipeline")
    with open(client.download_artifacts(run_id, "training_set.json")) as fh:
        recorded = json.load(fh)
    dates = [dt.date.fromisoformat(d) for d in recorded["dates"]]
    try:
        ts = build_training_set(spark, settings, dates[-1], versions=recorded["table_versions"], dates=dates,
                                features=recorded["features"])
        got = content(ts.frame)
    except Exception as exc:  # a vacuumed version, a dropped table: say which, not a stack trace
        raise LakehouseError(f"{mv.name} v{mv.version}: the training set cannot be rebuilt from "
                             f"{recorded['table_versions']}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                             ) from None
    stored = recorded.get("content")
    if stored is None and mv.tags.get("training_checksum"):
        stored = {"rows": int(mv.tags["training_rows"]), "checksum": mv.tags["training_checksum"]}
    result = Rebuilt(mv.name, str(mv.version), run_id, recorded["table_versions"], recorded["dates"], stored, got,
                     None if stored is None else stored == got)
    if stored is None:  # trained before checksums were recorded: record what the recorded versions give
        tag_content(client, mv.name, str(mv.version), got)
        result.recorded_now = True
        result.notes.append("no checksum was recorded at training; the rebuilt set's is now recorded on the version")
    if out is not None:
        ts.frame.write.mode("overwrite").parquet(str(out))
        result.written_to = str(out)
    return result


def model_pins(settings: Settings, client=None) -> dict[str, list[dict]]:
    """Which table versions registered model versions need to rebuild their training sets: per table
    (``layer.name``), one entry per model version that read it (model, version, table version).

    Every version of the configured model that is not archived pins (a deleted one is gone from the
    registry, so it pins nothing); a version with no recorded training set pins nothing either."""
    from mlflow.exceptions import MlflowException

    from lakehouse.ml import tracking

    client = client or tracking.client(settings)
    pins: dict[str, list[dict]] = {}
    try:
        versions = client.search_model_versions(f"name='{settings.model.name}'")
    except MlflowException:
        return pins
    for mv in versions:
        run_id = mv.tags.get("train_run_id") if mv.tags else None
        if getattr(mv, "current_stage", None) == "Archived" or not run_id:
            continue
        try:
            with open(client.download_artifacts(run_id, "training_set.json")) as fh:
                recorded = json.load(fh)
        except (MlflowException, OSError):
            log.warning("%s v%s: no training_set.json in run %s; it pins no table version", mv.name, mv.version, run_id)
            continue
        for table, version in recorded.get("table_versions", {}).items():
            pins.setdefault(table, []).append({"model": mv.name, "version": str(mv.version),
                                               "table_version": int(version)})
    return pins
