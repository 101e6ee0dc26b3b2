"""The gold stage for one logical date: the activity slice, the lifetime state, the feature snapshot
and the matured labels. It reads silver and gold through ``lakehouse.tables`` and ``delta_io``, hands
frames to the computations (``activity``, ``entities``, ``features``, ``labels``) and writes each
output as an atomic replace of the date's partition, so a re-run leaves identical tables.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import catalog, delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.gold import activity, entities, entity_store, features, labels
from lakehouse.parallel import run_parallel
from lakehouse.run_ids import new_run_id
from lakehouse.tables import Table

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


def _date(day: dt.date):
    return F.lit(day.isoformat()).cast("date")


def _existing(spark: SparkSession, settings: Settings, table: Table, hint: str) -> str:
    """``table``'s location; a LakehouseError naming what to run first when it does not exist."""
    uri = table.uri(settings)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"{table.qualified} does not exist at {uri}: {hint}")
    return uri


# ---- reads ----
def _arrived(spark: SparkSession, settings: Settings, name: str, day: dt.date, through: bool) -> DataFrame:
    """Silver rows of ``name`` with a customer that arrived on ``day`` (``through``: by ``day``)."""
    uri = _existing(spark, settings, tables.silver(name), f"run silver for {day} first")
    arrived = F.col("_ingest_date") <= _date(day) if through else F.col("_ingest_date") == _date(day)
    return delta_io.read(spark, uri).where(arrived).where(F.col("customer_id").isNotNull())


def _seen_sessions(spark: SparkSession, settings: Settings, events: DataFrame, day: dt.date) -> DataFrame:
    """``session_id`` of the sessions of earlier batches that today's events may continue: those with an
    event since ``activity.SESSION_LOOKBACK_DAYS`` before today's earliest event."""
    since = events.where(F.col("session_id").isNotNull()).agg(F.min(F.to_date("ts"))).first()[0]
    if since is None:
        return events.select("session_id").limit(0)
    return (delta_io.read(spark, tables.silver("web_events").uri(settings))
            .where(F.col("_ingest_date") < _date(day))
            .where(F.col("ts") >= F.lit(since.isoformat()).cast("timestamp")
                   - F.expr(f"INTERVAL {activity.SESSION_LOOKBACK_DAYS} DAYS"))
            .select("session_id").distinct())


def build_activity(spark: SparkSession, settings: Settings, day: dt.date, through: bool = False) -> DataFrame:
    """The ``ingest_date = day`` slice of customer_activity_daily, from silver rows that arrived on ``day``.

    ``through=True`` is the full recompute: every slice up to ``day`` in one pass over silver (used to
    check that the incremental table equals a rebuild, and to rebuild after a definition change).
    """
    events = _arrived(spark, settings, "web_events", day, through).where(F.col("ts").isNotNull())
    seen = None if through else _seen_sessions(spark, settings, events, day)
    return activity.compute_activity(events, _arrived(spark, settings, "transactions", day, through),
                                     _arrived(spark, settings, "nps_responses", day, through), seen)


def read_daily(spark: SparkSession, settings: Settings, day: dt.date) -> DataFrame:
    """The stored customer_activity_daily (every ingest date)."""
    return delta_io.read(spark, _existing(spark, settings, tables.ACTIVITY, f"build activity for {day} first"))


def build_state(spark: SparkSession, settings: Settings, day: dt.date) -> tuple[DataFrame, str]:
    """The ``as_of_date = day`` partition of the lifetime state: rolled forward from D-1's when that is
    stored, else one pass over the stored daily activity (``features.lifetime_state``)."""
    prev = (day - dt.timedelta(days=1)).isoformat()
    uri = tables.LIFETIME_STATE.uri(settings)
    previous = None
    if delta_io.is_delta(spark, uri) and delta_io.has_rows(spark, uri, f"as_of_date = '{prev}'"):
        previous = delta_io.read(spark, uri).where(F.col("as_of_date") == F.lit(prev).cast("date"))
    return features.lifetime_state(read_daily(spark, settings, day), day, previous)


def build_snapshot(spark: SparkSession, settings: Settings, day: dt.date, daily: DataFrame | None = None) -> DataFrame:
    """Features of every customer active on ``day``, as known on ``day``, from the stored entity states.

    ``daily`` replaces the stored ``customer_activity_daily`` and lifetime state (a full recompute
    passes a rebuilt activity table; the state is then computed from it in one pass).
    """
    if daily is None:  # the stored activity and the stored state of D (build_gold writes it first)
        daily = read_daily(spark, settings, day)
        uri = _existing(spark, settings, tables.LIFETIME_STATE, f"build the state for {day} first")
        state = delta_io.read(spark, uri).where(F.col("as_of_date") == _date(day))
    else:
        state = features.lifetime(features.known_on(daily, day))
    state_of = entity_store.read_state_as_of
    return features.snapshot(
        day,
        subscriptions=state_of(spark, settings, "subscriptions", day),
        customers=state_of(spark, settings, "customers", day),
        subscriptions_then=state_of(spark, settings, "subscriptions", features.price_reference_day(day), known_on=day),
        tickets=state_of(spark, settings, "support_tickets", day),
        daily=daily, state=state)


def build_labels(spark: SparkSession, settings: Settings, run_date: dt.date) -> DataFrame | None:
    """Labels for snapshot date ``run_date - H``; None when that snapshot does not exist."""
    h = settings.gold.label_horizon_days
    snap_day = labels.label_snapshot_date(h, run_date)
    uri = tables.FEATURES.uri(settings)
    if not delta_io.is_delta(spark, uri):
        return None
    snap = delta_io.read(spark, uri).where(F.col("snapshot_date") == _date(snap_day)).select("customer_id", "snapshot_date")
    if snap.isEmpty():
        return None
    return labels.labels(snap, entity_store.read_state_as_of(spark, settings, "subscriptions", run_date), run_date, h)


# ---- writes ----
def _written(spark, uri: str, before: int | None, where: str) -> tuple[int, int | None]:
    """(rows, version) of the write just made to ``uri`` (latest version ``before`` it): the rows from
    the commit's metrics, so the rows are computed once and not cached to be counted; a count of
    ``where`` if the commit has none."""
    version, rows = delta_io.rows_written(spark, uri, before)
    if rows is None:
        rows = delta_io.read(spark, uri).where(where).count()
    return rows, version


def _write(spark, settings, table: Table, df, value, meta, result) -> dict[str, int]:
    """Replace ``table``'s partition ``value`` with ``df``; the version in ``result``, the rows returned."""
    uri = table.uri(settings)
    before = delta_io.latest_version(spark, uri)
    delta_io.replace_partition(df, uri, table.partition, value, meta)
    rows, result.versions[table.name] = _written(spark, uri, before, f"{table.partition} = '{value}'")
    log.info("%s %s=%s: %d rows (version %s)", table.qualified, table.partition, value, rows,
             result.versions[table.name])
    return {table.name: rows}


def build_gold(spark: SparkSession, settings: Settings, run_date: dt.date, run_id: str | None = None) -> GoldResult:
    """Gold for ``run_date`` in two steps of independent parts, each step's parts side by side
    (``settings.parallelism``; a small date's parts are chains of short jobs and commits whose latency
    overlaps): the activity slice then the lifetime state, beside the entity checkpoints; then the
    feature snapshot (which reads all three) beside the labels of the snapshot ``label_horizon_days``
    back (stored by an earlier date's run: the horizon is at least a day). Each table gets the one
    commit it got one part after the other, with the same rows."""
    started = time.perf_counter()
    run_id = run_id or new_run_id("gold", run_date)
    result = GoldResult(run_date.isoformat(), run_id)
    catalog.register(spark, settings)
    meta = delta_io.commit_metadata(run_id, "gold", run_date.isoformat())
    day = run_date.isoformat()
    snap_day = labels.label_snapshot_date(settings.gold.label_horizon_days, run_date)

    # each part returns the rows it wrote by table
    def activity_and_state(session: SparkSession) -> dict[str, int]:
        rows = _write(session, settings, tables.ACTIVITY, build_activity(session, settings, run_date), day, meta, result)
        state, how = build_state(session, settings, run_date)
        rows |= _write(session, settings, tables.LIFETIME_STATE, state, day, meta, result)
        log.info("%s %s: %s", tables.LIFETIME_STATE.qualified, day, how)
        return rows

    def checkpoints(session: SparkSession) -> dict[str, int]:
        return entity_store.write_checkpoints(session, settings, [run_date, features.price_reference_day(run_date)], meta)

    def snapshot(session: SparkSession) -> dict[str, int]:
        return _write(session, settings, tables.FEATURES, build_snapshot(session, settings, run_date), day, meta, result)

    def matured_labels(session: SparkSession) -> dict[str, int]:
        lab = build_labels(session, settings, run_date)
        if lab is None:
            log.info("%s: no snapshot for %s yet (horizon %d days); nothing to label", tables.LABELS.qualified,
                     snap_day, settings.gold.label_horizon_days)
            return {}
        rows = _write(session, settings, tables.LABELS, lab, snap_day.isoformat(), meta, result)
        result.label_snapshot = snap_day.isoformat()
        result.churned = delta_io.read(session, tables.LABELS.uri(settings)) \
            .where(f"snapshot_date = '{snap_day}'").where("churned = 1").count()
        return rows

    for step in ([activity_and_state, checkpoints], [snapshot, matured_labels]):
        for rows in run_parallel(spark, step, lambda session, part: part(session), settings.parallelism,
                                 name=lambda part: f"gold {part.__name__} {day}"):
            result.rows.update(rows)  # in the parts' order, whichever finished first
    result.seconds = round(time.perf_counter() - started, 2)
    return result


# ---- the history load: every date of a range in one pass per table ----
def _between(column: str, first: dt.date, last: dt.date) -> str:
    return f"{column} >= '{first.isoformat()}' AND {column} <= '{last.isoformat()}'"


def _write_range(spark, settings, table: Table, df, first: dt.date, last: dt.date, meta, result) -> None:
    """Replace the partitions ``first..last`` of ``table`` with ``df`` in one commit (a file per partition)."""
    uri = table.uri(settings)
    before, where = delta_io.latest_version(spark, uri), _between(table.partition, first, last)
    delta_io.replace_where(df.repartition(table.partition), uri, where, meta, partition_by=table.partition_by)
    result.rows[table.name], result.versions[table.name] = _written(spark, uri, before, where)
    log.info("%s %s=%s..%s: %d rows in one commit (version %s)", table.qualified, table.partition, first, last,
             result.rows[table.name], result.versions[table.name])


def _states_at(spark, settings, table: str, days: DataFrame, as_of_days_before: int = 0,
               known_days_after: int = 0) -> DataFrame:
    """The state of ``table`` for every ``snapshot_date`` of ``days``: as of that date minus
    ``as_of_days_before`` (else plus ``known_days_after``), as known on it plus ``known_days_after``
    (``entities.states_over``)."""
    history = delta_io.read(spark, entity_store.history_uri(spark, settings, table))
    return entities.states_over(history, table, days.select("snapshot_date"),
                                as_of_shift=-as_of_days_before if as_of_days_before else known_days_after,
                                known_shift=known_days_after)


def build_gold_range(spark: SparkSession, settings: Settings, first: dt.date, last: dt.date,
                     run_id: str | None = None) -> GoldResult:
    """Gold for every date of ``first..last`` at once, equal to ``build_gold`` run date by date: the
    activity of the range in one pass, the lifetime states and the windows of every date by running
    sums over each customer's days (``features.lifetime_values``, ``features.window_values``), the
    snapshots of every date in one pass (``features.snapshots``), and the labels of every snapshot
    whose horizon ends in the range; one commit per table."""
    started = time.perf_counter()
    run_id = run_id or new_run_id("gold", last)
    result = GoldResult(f"{first}..{last}", run_id)
    catalog.register(spark, settings)
    meta = delta_io.commit_metadata(run_id, "gold", last.isoformat(), first_date=first.isoformat())
    dates = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    days = F.broadcast(spark.createDataFrame([(d,) for d in dates], "snapshot_date date"))

    activity_rows = build_activity(spark, settings, last, through=True).where(_between("ingest_date", first, last))
    _write_range(spark, settings, tables.ACTIVITY, activity_rows, first, last, meta, result)
    daily = read_daily(spark, settings, last)
    _write_range(spark, settings, tables.LIFETIME_STATE, features.lifetime_values(daily, first, last), first, last,
                 meta, result)
    result.rows.update(entity_store.write_checkpoints(
        spark, settings, sorted({*dates, *map(features.price_reference_day, dates)}), meta))

    states = (delta_io.read(spark, tables.LIFETIME_STATE.uri(settings))
              .where(_between("as_of_date", first, last)).withColumnRenamed("as_of_date", "snapshot_date"))
    snaps = features.snapshots(
        subscriptions=_states_at(spark, settings, "subscriptions", days),
        customers=_states_at(spark, settings, "customers", days),
        subscriptions_then=_states_at(spark, settings, "subscriptions", days,
                                      as_of_days_before=features.PRICE_LOOKBACK_DAYS),
        tickets=_states_at(spark, settings, "support_tickets", days),
        window_rows=None, windows=features.window_values(daily, first, last), state=states)
    _write_range(spark, settings, tables.FEATURES, snaps, first, last, meta, result)

    h = settings.gold.label_horizon_days
    lo, hi = labels.label_snapshot_date(h, first), labels.label_snapshot_date(h, last)
    snapshot_days = (delta_io.read(spark, tables.FEATURES.uri(settings)).where(_between("snapshot_date", lo, hi))
                     .select("customer_id", "snapshot_date"))
    label_days = F.broadcast(spark.createDataFrame([(lo + dt.timedelta(days=i),) for i in range((hi - lo).days + 1)],
                                                   "snapshot_date date"))
    labelled = labels.labels_at(snapshot_days, _states_at(spark, settings, "subscriptions", label_days,
                                                          known_days_after=h), h)
    _write_range(spark, settings, tables.LABELS, labelled, lo, hi, meta, result)
    result.label_snapshot = f"{lo}..{hi}"
    result.churned = delta_io.read(spark, tables.LABELS.uri(settings)).where(_between("snapshot_date", lo, hi)) \
        .where("churned = 1").count()
    result.seconds = round(time.perf_counter() - started, 2)
    log.info("gold %s..%s: %s in %.1fs", first, last, ", ".join(f"{k} {v}" for k, v in result.rows.items()),
             result.seconds)
    return result
