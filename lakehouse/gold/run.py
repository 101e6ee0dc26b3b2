"""The gold job for one logical date: activity slice, feature snapshot, matured labels.

Each output is an atomic replace of the date's partition, so a re-run leaves identical tables.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field

from pyspark.sql import SparkSession

from lakehouse import catalog, delta_io
from lakehouse.config import Settings
from lakehouse.gold import activity, entities, features, labels
from lakehouse.storage import table_uri

log = logging.getLogger(__name__)


@dataclass
class GoldResult:
    run_date: str
    run_id: str
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int | None] = field(default_factory=dict)
    label_snapshot: str | None = None
    churned: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _write(spark, settings, name, df, part_col, value, meta, result) -> None:
    uri = table_uri(settings, "gold", name)
    df = df.cache()
    try:
        result.rows[name] = df.count()
        delta_io.replace_partition(df, uri, part_col, value, meta)
    finally:
        df.unpersist()
    result.versions[name] = delta_io.latest_version(spark, uri)
    log.info("gold.%s %s=%s: %d rows (version %s)", name, part_col, value, result.rows[name], result.versions[name])


def build_gold(spark: SparkSession, settings: Settings, run_date: dt.date, run_id: str | None = None) -> GoldResult:
    started = time.perf_counter()
    run_id = run_id or f"gold-{run_date.isoformat()}-{uuid.uuid4().hex[:8]}"
    result = GoldResult(run_date.isoformat(), run_id)
    catalog.register(spark, settings)
    meta = delta_io.commit_metadata(run_id, "gold", run_date.isoformat())
    day = run_date.isoformat()
    _write(spark, settings, activity.TABLE, activity.build_activity(spark, settings, run_date),
           "ingest_date", day, meta, result)
    state, how = features.build_state(spark, settings, run_date)
    _write(spark, settings, features.STATE_TABLE, state, "as_of_date", day, meta, result)
    log.info("gold.%s %s: %s", features.STATE_TABLE, day, how)
    result.rows.update(entities.write_checkpoints(spark, settings, [run_date, features.price_reference_day(run_date)],
                                                  meta))
    _write(spark, settings, features.TABLE, features.build_snapshot(spark, settings, run_date),
           "snapshot_date", day, meta, result)
    lab = labels.build_labels(spark, settings, run_date)
    snap = labels.label_snapshot_date(settings, run_date).isoformat()
    if lab is None:
        log.info("gold.churn_labels: no snapshot for %s yet (horizon %d days); nothing to label", snap,
                 settings.gold.label_horizon_days)
    else:
        _write(spark, settings, labels.TABLE, lab, "snapshot_date", snap, meta, result)
        result.label_snapshot = snap
        result.churned = delta_io.read(spark, table_uri(settings, "gold", labels.TABLE)) \
            .where(f"snapshot_date = '{snap}'").where("churned = 1").count()
    result.seconds = round(time.perf_counter() - started, 2)
    return result
