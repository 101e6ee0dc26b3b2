"""``lakehouse.parallel.run_parallel``: items side by side on child sessions, each after the items it waits for."""

import threading
import time

import pytest

from lakehouse.parallel import run_parallel


def _recorder():
    lock, events = threading.Lock(), []

    def task(session, item):
        with lock:
            events.append(("start", item))
        time.sleep(0.3 if item == "long" else 0.05)
        if item == "broken":
            raise RuntimeError("broken item")
        with lock:
            events.append(("end", item))
        return item.upper()

    return task, events


def test_an_item_starts_once_what_it_waits_for_is_done_not_a_whole_step(spark):
    task, events = _recorder()
    needs = {"long": [], "first": [], "second": ["first"], "third": ["first"]}
    out = run_parallel(spark, list(needs), task, 2, after=lambda i: needs[i])
    assert out == ["LONG", "FIRST", "SECOND", "THIRD"]  # results in item order
    pos = {e: i for i, e in enumerate(events)}
    for item in ("second", "third"):
        assert pos[("end", "first")] < pos[("start", item)]
        # ...and beside the long item, which they do not wait for (a step barrier would hold them back)
        assert pos[("start", item)] < pos[("end", "long")]


def test_one_at_a_time_the_order_respects_what_each_item_waits_for(spark):
    task, events = _recorder()
    needs = {"second": ["first"], "first": [], "third": []}
    assert run_parallel(spark, list(needs), task, 1, after=lambda i: needs[i]) == ["SECOND", "FIRST", "THIRD"]
    assert [i for kind, i in events if kind == "start"] == ["first", "second", "third"]


@pytest.mark.parametrize("workers", [1, 2])
def test_after_a_failure_what_waits_for_it_never_runs_and_the_rest_does(spark, workers):
    task, events = _recorder()
    needs = {"broken": [], "after_broken": ["broken"], "after_that": ["after_broken"], "other": []}
    with pytest.raises(RuntimeError, match="broken item"):
        run_parallel(spark, list(needs), task, workers, after=lambda i: needs[i])
    started = {i for kind, i in events if kind == "start"}
    assert started == {"broken", "other"} and ("end", "other") in events


def test_items_that_wait_for_each_other_are_refused(spark):
    task, _ = _recorder()
    with pytest.raises(ValueError, match="cycle"):
        run_parallel(spark, ["a", "b"], task, 2, after=lambda i: {"a": ["b"], "b": ["a"]}[i])
