"""The daily pipeline, defined once: its stages in order, the jobs that run them and what each waits for.

Everything that runs the pipeline reads this definition: ``lakehouse run`` (a date or a range in one
Spark session), the demo, the local cluster run, the backfill check and the benchmarks; the Airflow
DAG (which may not import this package) is checked against it by a test (tests/dags/test_dagbag.py).

A *stage* (``ingest``, ``silver``, ``gold``, ``materialize``, ``score``, ``retrain``) is what
``lakehouse run --stages`` names; a *task* is one spark-submit job of the DAG (the ingest stage is one
task per configured source). Within a date the stages run in ``STAGES`` order, which respects every
task's ``after``. Each stage is idempotent per date, so a range re-run converges.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass
from typing import Callable

from lakehouse import logs
from lakehouse.config import Settings, SourcesConfig
from lakehouse.parallel import run_parallel
from lakehouse.spark import compiled_everywhere, estimated_mb, interpreted, worth_compiling

log = logging.getLogger(__name__)

# the sources, in the order config declares them (SourcesConfig's fields)
SOURCES: list[str] = list(SourcesConfig.model_fields)
STAGES: list[str] = ["ingest", "silver", "gold", "materialize", "score", "retrain"]
DATA_STAGES: list[str] = ["ingest", "silver", "gold", "materialize"]  # `lakehouse run`'s default
MODEL_STAGES: list[str] = ["score", "retrain"]


@dataclass(frozen=True)
class Task:
    """One job of the daily DAG: ``jobs/<script>.py --run-date D`` plus ``args``, after ``after``."""

    task_id: str
    stage: str
    script: str
    after: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


def sources(settings: Settings | None = None) -> list[str]:
    """The configured sources (every key of ``sources`` in config; all four are required today)."""
    return list(settings.sources.model_fields) if settings is not None else list(SOURCES)


def daily_tasks(settings: Settings | None = None) -> list[Task]:
    """The daily DAG's tasks in a valid order: ingestion per source -> silver -> gold -> the online
    store and scoring -> retraining when scoring flagged drift (or no champion exists)."""
    ingest = [Task(f"ingest_{s}", "ingest", f"ingest_{s}") for s in sources(settings)]
    return [*ingest,
            Task("silver", "silver", "silver", tuple(t.task_id for t in ingest)),
            Task("gold", "gold", "gold", ("silver",)),
            Task("materialize", "materialize", "materialize", ("gold",)),
            Task("score", "score", "score", ("gold",)),
            Task("retrain_if_flagged", "retrain", "train", ("score",), ("--only-if-flagged",))]


def maintenance_tasks() -> list[Task]:
    """The maintenance DAG's tasks (its own weekly schedule): compaction of small files
    (``lakehouse.maintenance``). Not a stage of a date: it changes files, never rows."""
    return [Task("compact_tables", "maintenance", "maintenance")]


@functools.cache
def _stage_funcs() -> dict[str, Callable]:
    """Each stage's function (spark, settings, day), built once (its imports are lazy: jobs load only theirs)."""
    from lakehouse.featurestore.store import materialize
    from lakehouse.gold.stage import build_gold
    from lakehouse.ingest.stage import ingest_source
    from lakehouse.silver.stage import validate_and_report

    def ingest(spark, settings, day):
        return [r.as_dict() for r in run_parallel(spark, sources(settings),
                                                  lambda session, s: ingest_source(session, settings, s, day),
                                                  settings.parallelism, name=lambda s: f"ingest of {s} {day}")]

    def score(spark, settings, day):
        from lakehouse.ml.scoring import score_customers

        return score_customers(spark, settings, day)

    def retrain(spark, settings, day):
        from lakehouse.ml.train import train_if_flagged

        return train_if_flagged(spark, settings, day)

    return {
        "ingest": ingest,
        "silver": lambda spark, settings, day: validate_and_report(spark, settings, day),
        "gold": lambda spark, settings, day: build_gold(spark, settings, day),
        "materialize": lambda spark, settings, day: materialize(spark, settings, day),
        "score": score,
        "retrain": retrain,
    }


def check_stages(stages: list[str]) -> list[str]:
    """``stages`` in pipeline order; a ValueError naming any unknown one."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
    return [s for s in STAGES if s in stages]


def run_stage(spark, settings: Settings, stage: str, day: dt.date):
    """One stage for one date, logged to ``<logs_dir>/<stage>/<date>.log``; returns the stage's result."""
    with logs.file_log(settings.path(settings.logs_dir) / stage, f"{day}.log"):
        return _stage_funcs()[stage](spark, settings, day)


def run_range(spark, settings: Settings, dates: list[dt.date], stages: list[str],
              on_date: Callable[[dt.date, dict], None] | None = None) -> list[dict]:
    """Run ``stages`` for every date in order; returns per date the seconds each stage took.

    For local use and backfills: each date runs the same stage functions the ``jobs/`` entry points run
    under Airflow (one spark-submit per task there), without a JVM start per step. A stage that fails
    stops the run at that date (later dates depend on it); what completed stays committed.
    """
    ordered = check_stages(stages)
    done = []
    started = time.perf_counter()
    for i, day in enumerate(dates):
        timings: dict = {"date": day.isoformat()}
        for stage in ordered:
            t = time.perf_counter()
            run_stage(spark, settings, stage, day)
            timings[stage] = round(time.perf_counter() - t, 1)
        done.append(timings)
        elapsed = time.perf_counter() - started
        eta = elapsed / (i + 1) * (len(dates) - i - 1)
        log.info("run %s done (%d/%d): %s; elapsed %.0fs, about %.0fs to go", day, i + 1, len(dates),
                 ", ".join(f"{k} {v}s" for k, v in timings.items() if k != "date"), elapsed, eta)
        if on_date:
            on_date(day, timings)
    return done


HISTORY_STAGES: list[str] = ["ingest", "silver", "gold", "materialize"]  # what a history load runs


def check_range(first: dt.date, last: dt.date, today: dt.date | None = None) -> list[dt.date]:
    """The dates ``first..last``; a ValueError in one line for a reversed range or one that ends after
    ``today`` (default: the machine's date in UTC: the only use of the clock, and never for data)."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if last < first:
        raise ValueError(f"the range {first}..{last} is reversed: --from must be on or before --to")
    if last > today:
        raise ValueError(f"the range {first}..{last} ends in the future (today is {today}): its data cannot exist yet")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def load_history(spark, settings: Settings, first: dt.date, last: dt.date, stages: list[str] | None = None,
                 run_id: str | None = None, today: dt.date | None = None, record: bool = True) -> dict:
    """The history load: every date of ``first..last`` stage by stage in one Spark application, leaving
    the tables daily runs of those dates leave (tests/integration/test_history_load.py).

    ingest (``ingest.stage.ingest_range``) fetches and lands each date as a daily run does (its raw
    partition and manifest), then parses each type once over the range; silver
    (``silver.history.load_silver_range``) and gold (``gold.stage.build_gold_range``) process the range
    in one pass per table; every table gets one commit for the range; the online store is materialized
    once, for ``last``. A source that cannot be fetched for some dates stops the load before bronze
    is written (naming every gap). ``record``: the load's writes go to the run ledger as one run (a job that
    records its own run passes False). A stage that fails stops the load there: silver writes nothing unless every
    table passes its gates on every date, and each of gold's tables is one commit. Re-loading a
    range replaces exactly its dates. Returns seconds and counts per stage and the load's run id.
    """
    from lakehouse.run_ids import new_run_id

    dates = check_range(first, last, today)
    ordered = [s for s in check_stages(stages or HISTORY_STAGES) if s in HISTORY_STAGES]
    run_id = run_id or new_run_id("history", last)
    out: dict = {"run_id": run_id, "first": first.isoformat(), "last": last.isoformat(), "dates": len(dates),
                 "seconds": {}, "rows": {}}
    started = time.perf_counter()
    log_dir = settings.path(settings.logs_dir) / "history"
    with logs.file_log(log_dir, f"{first}_{last}.log"):
        log.info("history load %s..%s (%d dates): %s; run %s", first, last, len(dates), " -> ".join(ordered), run_id)
        compiled = None  # whether silver and gold run with code generation: decided once bronze holds the range
        for stage in ordered:
            t = time.perf_counter()
            if stage in ("silver", "gold") and compiled is None:
                compiled = compile_range(spark, settings, first, last)
            with compiled_everywhere(spark, compiled):
                _history_stage(spark, settings, stage, dates, run_id, out)
            out["seconds"][stage] = round(time.perf_counter() - t, 1)
            log.info("history load: %s done in %.1fs (%.0fs so far)", stage, out["seconds"][stage],
                     time.perf_counter() - started)
        out["seconds"]["total"] = round(time.perf_counter() - started, 1)
        if record:
            from lakehouse.versioning import record_run

            out["tables_written"] = record_run(spark, settings, run_id, f"history {first}..{last}", last.isoformat(),
                                               seconds=out["seconds"]["total"])
    return out


def compile_range(spark, settings: Settings, first: dt.date, last: dt.date) -> bool:
    """Whether a history load of ``first..last`` runs silver and gold with Spark's code generation:
    where SQL runs interpreted (the local and test overlays, which suit a small date) and the range's
    bronze files come to ``quality.compile_min_mb`` or more. A range is read in a few large queries,
    each compiled once: from the size at which a single large date gains by compiling, the range
    does too."""
    from lakehouse import delta_io, tables
    from lakehouse.quality.rules import load_rules

    if settings.quality.compile_min_mb is None or not interpreted(spark):
        return False  # (SQL compiled already, or never)
    size = 0.0
    for name in sorted({spec.bronze for spec in load_rules().values()}):
        uri = tables.bronze(name).uri(settings)
        if delta_io.is_delta(spark, uri):
            size += estimated_mb(delta_io.read(spark, uri).where(
                f"_ingest_date >= '{first.isoformat()}' AND _ingest_date <= '{last.isoformat()}'"))
    if worth_compiling(spark, settings, size):
        log.info("history load %s..%s: %.1f MiB of bronze >= quality.compile_min_mb %g: silver and gold with "
                 "Spark SQL code generation", first, last, size, settings.quality.compile_min_mb)
        return True
    return False


def _history_stage(spark, settings: Settings, stage: str, dates: list[dt.date], run_id: str, out: dict) -> None:
    """One stage of ``load_history`` over ``dates``; its row counts into ``out["rows"]``."""
    from lakehouse.gold.stage import build_gold_range
    from lakehouse.silver.history import load_silver_range

    first, last = dates[0], dates[-1]
    if stage == "ingest":
        from lakehouse.errors import SourceError
        from lakehouse.ingest.stage import bronze_range, gaps_message, land_range

        landed = run_parallel(spark, sources(settings),
                              lambda session, s: land_range(session, settings, s, dates, run_id),
                              settings.parallelism, name=lambda s: f"fetching {s} {first}..{last}")
        if any(ld.gaps for ld in landed):  # every source fetched first: no bronze table half loaded
            raise SourceError(gaps_message(landed))
        done = run_parallel(spark, landed, lambda session, ld: bronze_range(session, settings, ld),
                            settings.parallelism, name=lambda ld: f"bronze of {ld.source} {first}..{last}")
        out["rows"]["bronze"] = sum(n for r in done for n in r.rows.values())
    elif stage == "silver":
        results = load_silver_range(spark, settings, first, last, run_id)
        out["rows"]["silver"] = sum(o.silver_rows for r in results for o in r.tables)
        out["rows"]["quarantined"] = sum(o.quarantined for r in results for o in r.tables)
    elif stage == "gold":
        out["rows"].update(build_gold_range(spark, settings, first, last, run_id).rows)
    else:
        _stage_funcs()["materialize"](spark, settings, last)
