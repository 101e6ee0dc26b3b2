"""What every job in ``jobs/`` does around its step: arguments, config, logging, one session, exit code."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from typing import Callable

from lakehouse import logs
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError
from lakehouse.run_ids import new_run_id

log = logging.getLogger(__name__)


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--run-date must be YYYY-MM-DD, got {value!r}") from None


def job_args(description: str, argv: list[str] | None,
             extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    if extra:
        extra(p)
    p.add_argument("--run-date", required=True, type=parse_date, help="logical date YYYY-MM-DD")
    p.add_argument("--env", default="local", help="configuration overlay under conf/")
    p.add_argument("--run-id", help="run id to record (default: generated)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _task_run(spark, settings, args, name, status, started, summary=None, error=None) -> None:
    """Append the job's row to ops/task_runs; a failure to record never hides the job's own outcome."""
    if spark is None or settings is None:
        return
    from lakehouse import runlog

    try:
        runlog.record(spark, settings, getattr(args, "run_id", None) or f"{name}-{args.run_date}", name,
                      args.run_date.isoformat(), status, time.perf_counter() - started, summary, error)
    except Exception as exc:  # noqa: BLE001 - the summary is secondary to the job's result
        log.warning("could not record the task run in ops/task_runs: %s", exc)


def run_job(name: str, description: str, step: Callable[[object, Settings, argparse.Namespace], object],
            argv: list[str] | None = None, extra_args: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Parse args (the common ones and ``extra_args``'), load config, log to ``<logs_dir>/<name>/<date>.log``,
    run ``step`` in one session."""
    args = job_args(description, argv, extra_args)
    logs.configure(args.verbose)
    spark = settings = None
    started = time.perf_counter()
    try:
        settings = load_settings(args.env)
        logfile = logs.add_file_log(settings.path(settings.logs_dir) / name, f"{args.run_date.isoformat()}.log")
        log.info("job %s run_date=%s env=%s log=%s", name, args.run_date, args.env, logfile)
        from lakehouse.spark import build_session

        spark = build_session(settings, name)
        args.run_id = args.run_id or new_run_id(name, args.run_date)
        result = step(spark, settings, args)
        summary = result.as_dict() if hasattr(result, "as_dict") else result
        seconds = time.perf_counter() - started
        log.info("job %s done in %.1fs: %s", name, seconds, json.dumps(summary, default=str))
        from lakehouse.versioning import record_run

        reads = (summary or {}).get("table_versions") or (summary or {}).get("feature_versions") \
            if isinstance(summary, dict) else None
        written = record_run(spark, settings, args.run_id, name, args.run_date.isoformat(), reads, seconds=seconds)
        log.info("run ledger: %s wrote %d table version(s)", args.run_id, written)
        _task_run(spark, settings, args, name, "success", started, summary)
        return 0
    except LakehouseError as exc:
        log.error("job %s failed: %s", name, exc)
        print(f"error: {exc}", file=sys.stderr)
        result = getattr(exc, "result", None)
        _task_run(spark, settings, args, name, "failed", started,
                  result.as_dict() if hasattr(result, "as_dict") else None, str(exc))
        return 2
    except Exception as exc:
        _task_run(spark, settings, args, name, "failed", started, None, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if spark is not None:
            from lakehouse.quality.runtime import shutdown_deequ

            shutdown_deequ(spark)
            spark.stop()
