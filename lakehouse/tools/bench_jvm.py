"""``lakehouse bench jvm``: a Spark JVM's cold start with and without the class archive
(``lakehouse.jvm_archive``), each run in a new Python process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lakehouse.spark import archive_path

log = logging.getLogger(__name__)


def _startup(use_archive: bool, work: str) -> None:
    """One cold start in this new process: session, a first query, a 10-row Delta write and read."""
    from lakehouse.config import load_settings
    from lakehouse.spark import build_session

    started = time.perf_counter()
    settings = load_settings("test", overrides={} if use_archive else {"spark": {"class_archive": None}})
    spark = build_session(settings, "jvm-bench")
    session_s = time.perf_counter() - started
    spark.range(10).count()
    spark.range(10).write.format("delta").mode("overwrite").save(f"file://{work}/t")
    rows = spark.read.format("delta").load(f"file://{work}/t").count()
    print(json.dumps({"archive": use_archive, "session_s": round(session_s, 1), "rows": rows,
                      "total_s": round(time.perf_counter() - started, 1)}), flush=True)
    spark.stop()


def bench_startup(runs: int, out_json: Path, out_md: Path) -> list[dict]:
    """Cold starts of a new Python process with and without the archive, alternating, ``runs`` each."""
    from lakehouse.config import load_settings
    from lakehouse.tools.bench import machine

    archive = archive_path(load_settings("test"))
    if archive is None:
        from lakehouse.errors import LakehouseError

        raise LakehouseError("no class archive to compare with: run `make cds` first")
    results = []
    for i in range(runs):
        for use in (False, True):
            with tempfile.TemporaryDirectory(prefix="churn-jvm-bench-") as work:
                t = time.perf_counter()
                run = subprocess.run([sys.executable, "-m", "lakehouse.tools.bench_jvm", "_startup",
                                      "on" if use else "off", work],
                                     capture_output=True, text=True, timeout=600,
                                     env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"))
                if run.returncode != 0:
                    raise RuntimeError(f"start-up run failed: {run.stderr[-2000:]}")
                row = json.loads(run.stdout.strip().splitlines()[-1])
                row["process_s"] = round(time.perf_counter() - t, 1)
                results.append(row)
                log.info("run %d, archive %s: %s", i + 1, "on" if use else "off", row)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"machine": machine(), "archive": str(archive), "results": results}, indent=2))

    def cell(use: bool, key: str) -> str:
        values = sorted(r[key] for r in results if r["archive"] == use)
        return f"{values[0]}-{values[-1]} s" if len(values) > 1 else f"{values[0]} s"

    shown = archive.relative_to(Path.cwd()) if archive.is_relative_to(Path.cwd()) else archive  # no home paths in docs
    out_md.write_text("\n".join([
        "# Benchmark: a Spark JVM's cold start with and without the class archive",
        "",
        f"Machine: {machine()}. {runs} run(s) each, alternating; each run a new Python process: "
        "session start, `range(10).count()`, a 10-row Delta write and read (`lakehouse bench jvm`).",
        f"Archive: `{shown}` ({archive.stat().st_size / 1e6:.0f} MB, `lakehouse/jvm_archive.py`).",
        "",
        "| | session start | whole process |",
        "| --- | --- | --- |",
        f"| without the archive | {cell(False, 'session_s')} | {cell(False, 'process_s')} |",
        f"| with the archive | {cell(True, 'session_s')} | {cell(True, 'process_s')} |",
        ""]))
    return results



if __name__ == "__main__":
    if sys.argv[1:2] == ["_startup"]:
        _startup(sys.argv[2] == "on", sys.argv[3])
