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
