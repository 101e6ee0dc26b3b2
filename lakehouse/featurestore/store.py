"""Feature retrieval: point-in-time for training, latest value (online store) for inference.

Training (``get_historical_features``): for each (customer, as_of) row, every requested feature's value
from the newest row of its view that (a) has a timestamp on or before ``as_of``, (b) was known by the
end of ``as_of`` (its ``created`` time, or the end of its timestamp's day), and (c) is younger than the
view's TTL (``as_of - timestamp < ttl_days``); otherwise null. Tables are read at pinned Delta
versions (latest unless given) and the versions are returned, so a training set can be rebuilt
exactly from what it recorded.

Inference (``materialize`` + ``get_online_features``): after each run, the latest in-TTL values of the
newest version of every feature are copied into an SQLite file (one table per view, keyed by the
entity); ``get_online_features`` reads it with a primary-key lookup. SQLite is the embedded default;
a served deployment would use Redis or a key-value table in Postgres behind the same two functions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.featurestore.registry import Feature, FeatureView, Registry, load_registry

log = logging.getLogger(__name__)


@dataclass
class Retrieval:
    """What a training retrieval read: feature refs (name@vN) and the Delta version of each table."""

    features: list[str]
    columns: list[str]
    table_versions: dict[str, int]
    rows: int | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"features": self.features, "columns": self.columns, "table_versions": self.table_versions,
                "rows": self.rows}


def output_column(feature: Feature, explicit_version: bool) -> str:
    return f"{feature.name}__v{feature.version}" if explicit_version else feature.name


def _group(registry: Registry, refs: list[str], plain_names: bool = False) -> dict[str, list[tuple[Feature, str]]]:
    by_view: dict[str, list[tuple[Feature, str]]] = {}
    for ref in refs:
        view, feat = registry.resolve(ref)
        col = output_column(feat, "@" in ref and not plain_names)
        by_view.setdefault(view.name, []).append((feat, col))
    return by_view


def _view_frame(spark: SparkSession, settings: Settings, view: FeatureView, version: int) -> DataFrame:
    return delta_io.read(spark, _view_table(view).uri(settings), version=version)


def _view_table(view: FeatureView) -> tables.Table:
    return tables.Table(view.source.layer, view.source.table)


def _known_at(view: FeatureView, df: DataFrame):
    if view.created:
        return F.col(view.created).cast("timestamp")
    ts_type = dict(df.dtypes)[view.timestamp]
    if ts_type == "date":
        return F.col(view.timestamp).cast("timestamp") + F.expr("INTERVAL 1 DAY")
    return F.col(view.timestamp).cast("timestamp")


def point_in_time_join(entities: DataFrame, key: str, view: FeatureView, source: DataFrame,
                       feats: list[tuple[Feature, str]]) -> DataFrame:
    """``entities`` (with ``_row``, a unique row id, ``key`` and ``_as_of``, a date) with ``feats``
    (feature, output column) of ``view`` from its table's rows ``source``: for each row, the newest
    view row of the same key whose timestamp is on or before ``_as_of``, that was known by the end of
    ``_as_of`` and is younger than the view's TTL; null features when there is none."""
    rows = source.select(F.col(key).alias("_k"), F.col(view.timestamp).cast("date").alias("_ts"),
                         _known_at(view, source).alias("_known"),
                         *[F.expr(f.sql).cast(f.dtype).alias(col) for f, col in feats])
    keys = entities.select("_row", F.col(key).alias("_ek"), "_as_of")
    cand = keys.join(rows, (keys["_ek"] == rows["_k"]) & (rows["_ts"] <= keys["_as_of"])
                     & (rows["_known"] <= (keys["_as_of"].cast("timestamp") + F.expr("INTERVAL 1 DAY")))
                     & (F.datediff(keys["_as_of"], rows["_ts"]) < view.ttl_days), "inner")
    w = Window.partitionBy("_row").orderBy(F.col("_ts").desc(), F.col("_known").desc())
    best = cand.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").select("_row", *[col for _, col in feats])
    return entities.join(best, "_row", "left")


def get_historical_features(spark: SparkSession, settings: Settings, entity_df: DataFrame, refs: list[str],
                            versions: dict[str, int] | None = None, registry: Registry | None = None,
                            as_of_col: str = "as_of", plain_names: bool = False) -> tuple[DataFrame, Retrieval]:
    """``entity_df`` (entity key, ``as_of`` date, any other columns) joined with point-in-time features:
    training sets (labelled snapshots) and batch scoring (a date's customers) both read this way.

    Each view's table is read at ``versions[<layer>.<table>]`` (default: its latest version, recorded in
    the returned ``Retrieval``). A ref with an explicit version (``name@v1``) becomes column ``name__v1``
    unless ``plain_names`` (a model trained on ``name`` at v1 is fed ``name`` computed the v1 way).
    """
    registry = registry or load_registry()
    key = registry.entity.key
    missing = {key, as_of_col} - set(entity_df.columns)
    if missing:
        raise LakehouseError(f"entity rows need columns {sorted(missing)} (have {entity_df.columns})")
    versions = dict(versions or {})
    used: dict[str, int] = {}
    out = entity_df.withColumn("_as_of", F.col(as_of_col).cast("date")) \
        .withColumn("_row", F.monotonically_increasing_id())
    columns: list[str] = []
    for view_name, feats in _group(registry, refs, plain_names).items():
        view = registry.view(view_name)
        table = _view_table(view)
        version = versions.get(table.qualified)
        if version is None:
            version = delta_io.latest_version(spark, table.uri(settings))
            if version is None:
                raise LakehouseError(f"feature view {view.name}: table {table.qualified} does not exist at "
                                     f"{table.uri(settings)}")
        used[table.qualified] = version
        out = point_in_time_join(out, key, view, _view_frame(spark, settings, view, version), feats)
        columns += [col for _, col in feats]
    resolved = [registry.resolve(r)[1].ref for r in refs]
    return out.drop("_row", "_as_of"), Retrieval(resolved, columns, used)


# ---- online store ----------------------------------------------------------------------------------

def _db(settings: Settings) -> Path:
    path = settings.path(settings.feature_store.online_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _sqlite_type(dtype: str) -> str:
    return {"string": "TEXT", "int": "INTEGER", "double": "REAL", "boolean": "INTEGER", "date": "TEXT"}[dtype]


def materialize(spark: SparkSession, settings: Settings, run_date: dt.date, view_name: str | None = None,
                registry: Registry | None = None, run_id: str = "") -> dict:
    """Copy each customer's latest in-TTL feature values as of ``run_date`` into the online store."""
    registry = registry or load_registry()
    view = registry.view(view_name or settings.feature_store.view)
    key = registry.entity.key
    feats = view.latest()
    version = delta_io.latest_version(spark, _view_table(view).uri(settings))
    entities = _view_frame(spark, settings, view, version)
    d = run_date.isoformat()
    ids = (entities.where(F.col(view.timestamp).cast("date") <= F.lit(d).cast("date"))
           .where(F.datediff(F.lit(d).cast("date"), F.col(view.timestamp).cast("date")) < view.ttl_days)
           .select(key).distinct().withColumn("as_of", F.lit(d).cast("date")))
    frame, info = get_historical_features(spark, settings, ids, [f"{view.name}:{f.name}" for f in feats],
                                          versions={_view_table(view).qualified: version}, registry=registry)
    started = time.perf_counter()
    rows = frame.select(key, *[f.name for f in feats]).collect()
    db = _db(settings)
    cols = ", ".join(f'"{f.name}" {_sqlite_type(f.dtype)}' for f in feats)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE IF NOT EXISTS _materializations (view TEXT, run_date TEXT, rows INTEGER, "
                    "source_versions TEXT, run_id TEXT, PRIMARY KEY (view, run_date))")
        con.execute(f'DROP TABLE IF EXISTS "{view.name}__new"')
        con.execute(f'CREATE TABLE "{view.name}__new" ("{key}" TEXT PRIMARY KEY, {cols}, "_as_of" TEXT)')
        con.executemany(f'INSERT INTO "{view.name}__new" VALUES ({", ".join("?" * (len(feats) + 2))})',
                        [(r[key], *[_plain(r[f.name]) for f in feats], d) for r in rows])
        con.execute(f'DROP TABLE IF EXISTS "{view.name}"')
        con.execute(f'ALTER TABLE "{view.name}__new" RENAME TO "{view.name}"')
        con.execute("INSERT OR REPLACE INTO _materializations VALUES (?, ?, ?, ?, ?)",
                    (view.name, d, len(rows), json.dumps(info.table_versions), run_id))
    log.info("online store %s: %d %s rows as of %s (%.2fs)", db, len(rows), view.name, d,
             time.perf_counter() - started)
    return {"view": view.name, "rows": len(rows), "as_of": d, "path": str(db), "versions": info.table_versions}


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


class OnlineStore:
    """Read side of the online store: one SQLite connection, primary-key lookups."""

    def __init__(self, settings: Settings, view_name: str | None = None):
        self.path = _db(settings)
        if not self.path.exists():
            raise LakehouseError(f"online store {self.path} does not exist: materialize a run first")
        self.view = view_name or settings.feature_store.view
        self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        self.con.row_factory = sqlite3.Row

    def get(self, ids: list[str], features: list[str] | None = None) -> list[dict]:
        cols = "*" if not features else ", ".join(f'"{c}"' for c in ["customer_id", *features, "_as_of"])
        marks = ", ".join("?" * len(ids))
        try:
            found = {r["customer_id"]: dict(r) for r in self.con.execute(
                f'SELECT {cols} FROM "{self.view}" WHERE customer_id IN ({marks})', ids)}
        except sqlite3.OperationalError as exc:
            raise LakehouseError(f"online store {self.path}: {exc}") from None
        return [found.get(i, {"customer_id": i, "_missing": True}) for i in ids]

    def materializations(self) -> list[dict]:
        return [dict(r) for r in self.con.execute("SELECT * FROM _materializations ORDER BY run_date")]

    def close(self) -> None:
        self.con.close()


def get_online_features(settings: Settings, ids: list[str], features: list[str] | None = None) -> list[dict]:
    store = OnlineStore(settings)
    try:
        return store.get(ids, features)
    finally:
        store.close()
