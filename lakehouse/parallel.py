"""Run independent pieces of one job side by side in one Spark application.

Small daily batches leave the two local cores mostly idle: each table's work is a chain of short
Spark jobs and Delta commits whose cost is latency (planning, log reads, commit round trips), not
CPU. Running independent tables from a few driver threads overlaps that latency; Spark schedules
the threads' jobs on the same executors.

Each task gets its own ``SparkSession.newSession()``: same SparkContext and caches, but its own SQL
conf, so a task that sets a session option (MERGE commit metadata) cannot leak it into another.
The first failure is raised after every task has finished (no half-cancelled Spark jobs), and its
message names the item.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def run_parallel(spark: SparkSession, items: Iterable[T], task: Callable[[SparkSession, T], R],
                 workers: int, name: Callable[[T], str] = str) -> list[R]:
    """``task(session, item)`` for every item, at most ``workers`` at a time; results in item order."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [task(spark, item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="lakehouse") as pool:
        futures = [pool.submit(task, spark.newSession(), item) for item in items]
        errors = []
        results = []
        for item, fut in zip(items, futures):
            try:
                results.append(fut.result())
            except Exception as exc:  # noqa: BLE001 - collected, the first is re-raised below
                log.error("%s failed: %s", name(item), str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                errors.append(exc)
    if errors:
        raise errors[0]
    return results
