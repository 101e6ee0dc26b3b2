"""The CPU benchmark's thread accounting (lakehouse/tools/bench.py), on this test process."""

import os
import threading
import time

from lakehouse.tools.bench import _process_cpu, _thread_cpu, cpu_by_group, render_cpu_markdown


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_busy_thread_is_counted_in_its_group_and_in_the_process_after_it_ended():
    pid = os.getpid()
    before, total_before = _thread_cpu(pid), _process_cpu(pid)
    go_on = threading.Event()

    def work():
        _spin(0.3)
        go_on.wait(10)

    worker = threading.Thread(target=work)
    worker.start()
    while worker.native_id is None or worker.native_id not in _thread_cpu(pid):
        time.sleep(0.01)
    time.sleep(0.05)
    deadline = time.monotonic() + 10
    while _thread_cpu(pid)[worker.native_id][1] < 0.25 and time.monotonic() < deadline:
        time.sleep(0.05)
    live = _thread_cpu(pid)
    groups = cpu_by_group(before, live)
    assert live[worker.native_id][1] >= 0.25  # the spinning thread, by its id
    # Linux names a new thread after the process; digits fold ("python3.11" -> "pythonN.N")
    assert all(not any(ch.isdigit() for ch in name) for name in groups)
    assert sum(groups.values()) >= 0.25
    go_on.set()
    worker.join()
    # the kernel drops an ended thread's /proc entry soon after join returns, not always before (seen
    # on a loaded machine): wait for it rather than read once
    deadline = time.monotonic() + 10
    while worker.native_id in _thread_cpu(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.native_id not in _thread_cpu(pid)
    assert _process_cpu(pid) - total_before >= 0.25  # the ended thread's CPU stays in the process total


def test_the_report_names_thread_groups_and_the_share_of_the_cores():
    result = {"machine": "test box", "env": "test", "customers": 300, "days": 1, "session_s": 4.0,
              "wall_s": 10.0, "spark_jobs": 42, "python_cpu_s": 1.0, "jvm_cpu_s": 8.0,
              "jvm_threads": {"CN CompilerThre": 6.0, "Thread-N": 2.0},
              "stages": [{"date": "2026-01-01", "ingest": 2.0, "silver": 5.0, "gold": 3.0}]}
    text = render_cpu_markdown(result)
    assert "| JIT compilers (C1, C2) | 6.0 | 75% |" in text
    assert "42 Spark jobs" in text and "| 2026-01-01 | 2.0 | 5.0 | 3.0 |" in text
    assert f"{9.0 / (10.0 * (os.cpu_count() or 1)):.0%} busy" in text


def test_peak_memory_tells_a_mapped_files_pages_from_anonymous_memory(tmp_path):
    """The feature benchmark's memory measure (lakehouse/tools/bench_features.py): reading a mapped file
    raises the resident peak but not the anonymous one; writing a fresh buffer raises both."""
    import mmap

    from lakehouse.tools.bench_features import PeakMemory

    size = 64 * 2**20
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(size))
    base = PeakMemory(children=False)
    base._sample()
    with PeakMemory(interval=0.01, children=False) as mapped:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            assert sum(m[i] for i in range(0, size, 4096)) >= 0  # touch every page
            time.sleep(0.1)
    with PeakMemory(interval=0.01, children=False) as written:
        block = bytearray(size)
        for i in range(0, size, 4096):
            block[i] = 1
        time.sleep(0.1)
        del block
    mib = 2**20
    assert mapped.rise_mib >= 48
    assert mapped.anon_mib - base.peak_anon / mib < 16
    assert written.anon_mib - base.peak_anon / mib >= 48


def test_benchmark_lists_are_parsed_by_the_command_line_and_a_bad_one_is_named(capsys):
    import pytest

    from lakehouse.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "train"])
    assert (args.customers, args.cv_parallelism) == ([1000, 10000, 100000], None)
    args = parser.parse_args(["bench", "train", "--customers", "300,600", "--cv-parallelism", "1,2"])
    assert (args.customers, args.cv_parallelism) == ([300, 600], [1, 2])
    assert parser.parse_args(["bench", "validation", "--scales", "0.5,10"]).scales == [0.5, 10.0]
    for argv, message in ((["bench", "features", "--history", "30,a"],
                           "argument --history: '30,a' is not a comma-separated list of whole numbers"),
                          (["bench", "train", "--cv-parallelism", "0"],
                           "argument --cv-parallelism: '0': every whole number must be above 0"),
                          (["bench", "ingest", "--scales", "-1"], "argument --scales: '-1': every multiplier must be above 0")):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_date_range_that_ends_before_it_starts_is_refused_in_one_line(capsys):
    import pytest

    from lakehouse.cli import build_parser

    parser = build_parser()
    assert len(parser.parse_args(["run", "--run-date", "2026-01-30:2026-02-02"]).dates) == 4
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["run", "--run-date", "2026-02-02:2026-01-30"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2
    assert err.endswith("argument --run-date: '2026-02-02:2026-01-30': the range ends before it starts "
                        "(FIRST:LAST, FIRST <= LAST)")
