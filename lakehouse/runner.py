"""``lakehouse run``: the daily pipeline over a date or a range of dates in one Spark session.

For local use and backfills: each date runs the same stage functions the ``jobs/`` entry points run
under Airflow (one spark-submit per task there), in order, without a JVM start per step. A stage that
fails stops the run at that date (later dates depend on it); what completed stays committed and a
re-run of the range converges (every stage is idempotent per date).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable

from lakehouse import logs
from lakehouse.config import Settings
from lakehouse.parallel import run_parallel

log = logging.getLogger(__name__)
SOURCES = ["crm", "billing", "web", "support_api"]
STAGES = ["ingest", "silver", "gold", "materialize", "score"]


def _stage_funcs() -> dict[str, Callable]:
    from lakehouse.featurestore.store import materialize
    from lakehouse.gold.run import build_gold
    from lakehouse.ingest.run import ingest_source
    from lakehouse.quality.run import validate_and_report

    def ingest(spark, settings, day):
        return [r.as_dict() for r in run_parallel(spark, SOURCES, lambda session, s: ingest_source(session, settings, s, day),
                                                  settings.parallelism, name=lambda s: f"ingest of {s} {day}")]

    def score(spark, settings, day):
        from lakehouse.ml.scoring import score_customers

        return score_customers(spark, settings, day)

    return {
        "ingest": ingest,
        "silver": lambda spark, settings, day: validate_and_report(spark, settings, day),
        "gold": lambda spark, settings, day: build_gold(spark, settings, day),
        "materialize": lambda spark, settings, day: materialize(spark, settings, day),
        "score": score,
    }


def run_range(spark, settings: Settings, dates: list[dt.date], stages: list[str],
              on_date: Callable[[dt.date, dict], None] | None = None) -> list[dict]:
    """Run ``stages`` for every date in order; returns per date the seconds each stage took."""
    funcs = _stage_funcs()
    unknown = [s for s in stages if s not in funcs]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
    done = []
    started = time.perf_counter()
    for i, day in enumerate(dates):
        timings: dict = {"date": day.isoformat()}
        for stage in [s for s in STAGES if s in stages]:
            t = time.perf_counter()
            with logs.file_log(settings.path(settings.logs_dir) / stage, f"{day}.log"):
                funcs[stage](spark, settings, day)
            timings[stage] = round(time.perf_counter() - t, 1)
        done.append(timings)
        elapsed = time.perf_counter() - started
        eta = elapsed / (i + 1) * (len(dates) - i - 1)
        log.info("run %s done (%d/%d): %s; elapsed %.0fs, about %.0fs to go", day, i + 1, len(dates),
                 ", ".join(f"{k} {v}s" for k, v in timings.items() if k != "date"), elapsed, eta)
        if on_date:
            on_date(day, timings)
    return done
