"""Crash consistency and concurrent writers, against real processes (tests/procs/delta_writer.py).

The writer replaces Delta partitions through lakehouse.delta_io, the path every job writes through.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from lakehouse import delta_io
from tests.procs.delta_writer import ROWS_PER_DAY, day_rows

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "tests" / "procs" / "delta_writer.py"
TRIALS = int(os.environ.get("CRASH_TRIALS", "12"))  # a longer soak: CRASH_TRIALS=50
# The writer's last day: far more than any trial reaches, so every trial is killed mid-run (checked
# below). It was 40 until a fast day (2026-11-28) wrote 9 commits in 8.5 s and a trial ran out of days.
DAYS = 10_000


def _start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPARK_LOCAL_IP="127.0.0.1")
    return subprocess.Popen([sys.executable, str(WRITER), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, start_new_session=True)


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"writer did not start: {line!r}"


class _Expected(dict):
    """Checksum of each day's content as an uninterrupted writer leaves it, computed when first needed."""

    def __init__(self, spark):
        super().__init__()
        self.spark = spark

    def __missing__(self, day: int) -> tuple[int, str]:
        self[day] = delta_io.content_checksum(day_rows(self.spark, day))
        return self[day]


def _table_state(spark, uri: str) -> dict[int, tuple[int, str]]:
    """Checksum of every partition of the table's latest version (reads every data file it references)."""
    if not (Path(uri) / "_delta_log").exists() or delta_io.latest_version(spark, uri) is None:
        return {}
    return {int(day): sums for day, sums in delta_io.checksums_by(delta_io.read(spark, uri), "day").items()}


def test_kill_9_during_delta_writes_leaves_old_or_new_version_and_rerun_converges(spark, tmp_path):
    """TRIALS writer processes are killed with SIGKILL at random moments; each time the table must
    read as exactly the first m or m+1 days (m = last commit the writer reported), every partition
    whole. Each trial restarts at the first day not in the table: the date whose write was killed is
    re-run; a final run re-runs it to completion plus one more day, and the table equals an
    uninterrupted run's content."""
    rng = random.Random(20261126)
    uri = str(tmp_path / "crash_table")
    expected = _Expected(spark)
    committed, trials = 0, []
    for trial in range(TRIALS):
        proc = _start("crash", uri, str(committed + 1), str(DAYS))
        _wait_ready(proc)
        seen = []
        if trial % 2:  # let 1-3 commits through, then kill at a random moment of a later write
            wanted = rng.randint(1, 3)
            while len(seen) < wanted:
                line = proc.stdout.readline()
                if not line:
                    break
                seen.append(line)
            delay = rng.uniform(0.0, 1.5)
        else:  # a random moment after start-up: often inside the first write of the process
            delay = rng.uniform(0.0, 10.0)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (trial, proc.returncode)  # killed, not finished
        reported = [int(line.split()[1]) for line in [*seen, *out.splitlines()] if line.startswith("committed")]
        last = max(reported, default=committed)
        state = _table_state(spark, uri)
        days = sorted(state)
        assert days in (list(range(1, last + 1)), list(range(1, last + 2))), (trial, last, days)
        for d in days:  # never a partial partition: each day is exactly its content
            assert state[d] == expected[d], (trial, d)
        trials.append({"trial": trial, "kill_after_s": round(delay, 2), "commits": len(days) - committed,
                       "reported": last, "found": len(days)})
        committed = len(days)
    print(json.dumps(trials))
    # the kills landed at different points: after 0, 1, 2... commits of a trial (mid-run, not only at start)
    assert len({t["commits"] for t in trials}) >= 2 and committed >= TRIALS // 2, trials
    # the final, uninterrupted run re-runs the date the last kill cut short and writes one more: the
    # days after that are plain writes the kills never touched (writing them all cost ~1/4 of the test)
    last = committed + 2
    assert last <= DAYS, (committed, DAYS)
    final = _start("crash", uri, str(committed + 1), str(last))
    _wait_ready(final)
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0
    state = _table_state(spark, uri)
    assert state == {d: expected[d] for d in range(1, last + 1)}
    total = delta_io.read(spark, uri)
    assert total.count() == last * ROWS_PER_DAY  # re-run days were replaced, not appended
    assert total.groupBy("customer_id", "day").count().where("count > 1").count() == 0


def test_two_writers_on_one_partition_never_mix_or_duplicate(spark, tmp_path):
    uri = str(tmp_path / "race_table")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    rounds = 6
    delta_io.replace_partition(day_rows(spark, 1, "seed"), uri, "day", "001", "{}")
    procs = [_start("race", uri, w, str(rounds), str(barrier)) for w in ("a", "b")]
    for p in procs:
        _wait_ready(p)
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    results = [json.loads(line) for out in outputs for line in out.splitlines() if line.startswith("{")]
    print(json.dumps(results))
    assert len(results) == 2 * rounds
    failed = [r for r in results if not r["ok"]]
    for r in failed:  # a writer that gives up says so clearly
        assert "kept conflicting after" in r["error"], r
    retried = sum(r.get("attempts", 1) - 1 for r in results if r["ok"])
    assert retried + len(failed) >= 1, "the two writers never collided: the test proved nothing"
    df = delta_io.read(spark, uri)
    writers = [r["writer"] for r in df.select("writer").distinct().collect()]
    assert len(writers) == 1 and writers[0] in ("a", "b")  # one writer's partition, whole
    assert delta_io.content_checksum(df) == delta_io.content_checksum(day_rows(spark, 1, writers[0]))
    history = delta_io.read(spark, uri).sparkSession.sql(f"DESCRIBE HISTORY delta.`{uri}`")
    assert history.count() == 1 + sum(1 for r in results if r["ok"])  # every success is one commit
    shutil.rmtree(barrier)
