"""Training sets: labelled (customer, snapshot date) rows with point-in-time features from the store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.featurestore.registry import load_registry
from lakehouse.featurestore.store import Retrieval, get_historical_features


@dataclass
class TrainingSet:
    frame: DataFrame            # customer_id, as_of, label, one column per feature
    retrieval: Retrieval        # feature refs (with versions) and Delta versions of every table read
    dates: list[dt.date]        # snapshot dates used, ascending
    feature_columns: list[str]
    categorical: list[str]
    numeric: list[str]
    labels: DataFrame | None = None  # the labelled rows the frame is built on (customer_id, as_of, label)


def feature_refs(settings: Settings) -> list[str]:
    return [f"{settings.model.view}:{name}" for name in settings.model.features]


def labelled_dates(spark: SparkSession, settings: Settings, until: dt.date,
                   labels_version: int | None = None) -> list[dt.date]:
    uri = tables.LABELS.uri(settings)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"{tables.LABELS.qualified} does not exist at {uri}: run gold until labels mature "
                             f"({settings.gold.label_horizon_days} days after the first snapshot)")
    rows = (delta_io.read(spark, uri, version=labels_version).where(F.col("labelled_on") <= F.lit(until))
            .select("snapshot_date").distinct().orderBy("snapshot_date").collect())
    return [r[0] for r in rows]


def build_training_set(spark: SparkSession, settings: Settings, until: dt.date,
                       versions: dict[str, int] | None = None, dates: list[dt.date] | None = None,
                       features: list[str] | None = None) -> TrainingSet:
    """Labels known by ``until`` (every ``snapshot_every_days``-th date) joined with PIT features.

    ``versions`` pins Delta versions (to rebuild a recorded training set); ``dates`` pins the dates;
    ``features`` (``name@vN``, as a training run records them) pins the features and their versions,
    computed under their plain names, as training saw them (default: ``model.features`` now).
    """
    versions = dict(versions or {})
    registry = load_registry()
    uri = tables.LABELS.uri(settings)
    label_version = versions.get(f"{tables.LABELS.qualified}")
    if label_version is None:
        label_version = delta_io.latest_version(spark, uri)
    if dates is None:
        all_dates = labelled_dates(spark, settings, until, label_version)
        step = settings.model.snapshot_every_days
        dates = all_dates[::-1][::step][::-1]  # keep the newest, step back from it
    if len(dates) < 2:
        raise LakehouseError(f"need labelled snapshots on at least 2 dates to train (have {len(dates)}; labels "
                             f"mature {settings.gold.label_horizon_days} days after a snapshot)")
    labels = (delta_io.read(spark, uri, version=label_version)
              .where(F.col("snapshot_date").isin([d.isoformat() for d in dates]))
              .select("customer_id", F.col("snapshot_date").alias("as_of"), F.col("churned").alias("label")))
    refs = [f"{settings.model.view}:{f}" for f in features] if features else feature_refs(settings)
    frame, retrieval = get_historical_features(spark, settings, labels, refs, versions=versions, registry=registry,
                                               plain_names=bool(features))
    retrieval.table_versions[f"{tables.LABELS.qualified}"] = label_version
    feats = [registry.resolve(r)[1] for r in refs]
    categorical = [f.name for f in feats if f.dtype == "string"]
    numeric = [f.name for f in feats if f.dtype != "string"]
    return TrainingSet(frame, retrieval, sorted(dates), [f.name for f in feats], categorical, numeric, labels)
