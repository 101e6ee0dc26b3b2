"""Run independent pieces of one job side by side in one Spark application.

Small daily batches leave the two local cores mostly idle: each table's work is a chain of short
Spark jobs and Delta commits whose cost is latency (planning, log reads, commit round trips), not
CPU. Running independent tables from a few driver threads overlaps that latency; Spark schedules
the threads' jobs on the same executors.

Each running task holds one of a few ``SparkSession.newSession()`` children: same SparkContext and
caches, but its own SQL conf, so a task that sets a session option (MERGE commit metadata) cannot leak it into another.
The first failure is raised after every task has finished (no half-cancelled Spark jobs), and its
message names the item.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Callable, Iterable, TypeVar

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
_LOCK = threading.Lock()


def _child_sessions(spark: SparkSession, n: int) -> list[SparkSession]:
    """``n`` sessions sharing ``spark``'s context, made once and reused by later calls (a long
    backfill would otherwise leave a new session per table and date behind in the JVM)."""
    with _LOCK:
        children = spark.__dict__.setdefault("_lakehouse_children", [])
        while len(children) < n:
            child = spark.newSession()
            # a session reused by getOrCreate() got its config as runtime settings, which a new
            # session does not inherit: copy what the parent has set
            for row in spark.sql("SET").collect():
                if child.conf.isModifiable(row["key"]) and child.conf.get(row["key"], None) != row["value"]:
                    child.conf.set(row["key"], row["value"])
            children.append(child)
        return children[:n]


def run_parallel(spark: SparkSession, items: Iterable[T], task: Callable[[SparkSession, T], R],
                 workers: int, name: Callable[[T], str] = str,
                 after: Callable[[T], Iterable[T]] | None = None) -> list[R]:
    """``task(session, item)`` for every item, at most ``workers`` at a time; results in item order.

    ``after(item)``: the items of ``items`` that must have finished before ``item`` starts. An item
    waits for those only, not for a step of them all, so a long item does not hold back work that does
    not depend on it; of the items ready, the first in ``items`` starts first (one at a time, in that
    order, when ``workers`` is 1). An item whose predecessor failed does not run; the others do.
    """
    items = list(items)
    needs = [list(after(item)) if after else [] for item in items]
    waits = [{j for j, other in enumerate(items) if j != i and other in needs[i]} for i in range(len(items))]
    results: dict[int, R] = {}
    errors: dict[int, BaseException] = {}
    if workers <= 1 or len(items) <= 1:
        for i in _in_dependency_order(waits):
            if not waits[i] <= set(results):  # a predecessor failed (or did not run)
                continue
            try:
                results[i] = task(spark, items[i])
            except Exception as exc:  # noqa: BLE001 - the first is re-raised below, as from the threads
                if not after:
                    raise
                errors[i] = exc
        if errors:
            raise errors[min(errors)]
        return [results[i] for i in range(len(items))]
    n = min(workers, len(items))
    sessions = _child_sessions(spark, n)
    free: queue.SimpleQueue = queue.SimpleQueue()
    for session in sessions:
        free.put(session)

    def run(item):
        session = free.get()
        try:
            return task(session, item)
        finally:
            free.put(session)

    pending = list(_in_dependency_order(waits))
    running: dict[Future, int] = {}
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="lakehouse") as pool:
        while pending or running:
            for i in [i for i in pending if waits[i] <= set(results)][:n - len(running)]:
                pending.remove(i)
                running[pool.submit(run, items[i])] = i
            if not running:  # what is still pending waits for an item that failed or did not run
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                try:
                    results[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - collected, the first is re-raised below
                    log.error("%s failed: %s", name(items[i]), str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    errors[i] = exc
    if errors:
        raise errors[min(errors)]
    return [results[i] for i in range(len(items))]


def _in_dependency_order(waits: list[set[int]]) -> list[int]:
    """Indices such that each comes after those it waits for, else in their own order; a ValueError
    for items that wait for each other."""
    order: list[int] = []
    while len(order) < len(waits):
        ready = next((i for i in range(len(waits)) if i not in order and waits[i] <= set(order)), None)
        if ready is None:
            raise ValueError(f"items wait for each other in a cycle: {sorted(set(range(len(waits))) - set(order))}")
        order.append(ready)
    return order


@contextmanager
def everywhere(spark: SparkSession, values: dict[str, str]):
    """``values`` set on ``spark``'s SQL conf and on every child session ``run_parallel`` hands out,
    for the block; then each session gets back what it had (a child made inside the block copied the
    parent's settings of the moment: it gets the parent's from before the block)."""
    with _LOCK:
        children = spark.__dict__.setdefault("_lakehouse_children", [])
        sessions = [spark, *children]
    before = {id(s): {k: s.conf.get(k, None) for k in values} for s in sessions}
    for s in sessions:
        for k, v in values.items():
            s.conf.set(k, v)
    try:
        yield
    finally:
        with _LOCK:
            sessions = [spark, *spark.__dict__.get("_lakehouse_children", [])]
        for s in sessions:
            for k, v in before.get(id(s), before[id(spark)]).items():
                if v is None:
                    s.conf.unset(k)
                else:
                    s.conf.set(k, v)
