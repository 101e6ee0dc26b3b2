"""A class-data-sharing (CDS) archive of the Spark driver JVM's classes, for shorter job starts.

Every job here starts a JVM that loads and verifies several thousand classes from Spark's JAR files
before its first query. ``make setup`` runs one small Spark job whose JVM writes the classes it loaded
to an archive at exit (``-XX:ArchiveClassesAtExit``); later driver JVMs map that archive instead of
parsing the JARs again. Measured on the 2-core machine (docs/benchmarks.md): a spark-submit of a
10-row Delta write and read in 21-25 s with the archive against 31-33 s without.

The archive is only valid for the JDK and the Spark class path it was written with; a JVM given a
stale one says so in one warning line on stderr and starts the slow way, with the same results. The
options below also send the JVM's own warnings to stderr (default: stdout), so that a process whose
stdout is read by another (a test's child, a pipe) gets no JVM lines in it.

``lakehouse.spark.build_session`` adds the options in plain Python (tests, ``lakehouse run``); the
Airflow DAG passes them to spark-submit (Variable ``churn_driver_java_options``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _sidecar(archive: Path) -> Path:
    return archive.with_suffix(".json")


def verify(archive: Path) -> tuple[bool, str]:
    """Whether a JVM of the recorded JDK and class path can map ``archive``: ``-Xshare:on`` makes
    the JVM refuse to start otherwise. Returns (usable, the JVM's message when not)."""
    info = json.loads(_sidecar(archive).read_text())
    java = str(Path(info["java_home"]) / "bin" / "java")
    run = subprocess.run([java, "-Xshare:on", f"-XX:SharedArchiveFile={archive}", "-cp", info["class_path"],
                          "-version"], capture_output=True, text=True, timeout=120)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def _workload(archive_tmp: str, work: str) -> None:
    """Runs inside the spark-submit whose JVM writes the archive: what a daily job does, in small."""
    from lakehouse import delta_io
    from lakehouse.config import load_settings
    from lakehouse.spark import build_session

    settings = load_settings("test", overrides={"spark": {"class_archive": None}})
    spark = build_session(settings, "class-archive")
    jvm = spark.sparkContext._jvm
    uri = f"file://{work}/table"
    from pyspark.sql import functions as F

    rows = spark.range(200).select(F.col("id"), (F.col("id") % 7).alias("day"),
                                   F.sha2(F.col("id").cast("string"), 256).alias("v"))
    delta_io.replace_partition(rows.where("day = 1"), uri, "day", "1", delta_io.commit_metadata("cds", "cds", "1"))
    # every row with a newer "v", so the MERGE really updates (rows that change nothing never reach it)
    delta_io.merge_latest(spark, uri, rows.where("day = 1").withColumn("v", F.concat("v", F.lit("+"))), ["id"], "v",
                          delta_io.commit_metadata("cds", "cds", "1"))
    table = delta_io.read(spark, uri)
    table.groupBy("day").agg(F.count("*"), F.max("v")).collect()
    table.join(rows, "id", "left_anti").count()
    rows.toPandas()
    info = {"java_home": jvm.System.getProperty("java.home"), "class_path": jvm.System.getProperty("java.class.path"),
            "java_version": jvm.System.getProperty("java.version"), "spark_version": spark.version}
    Path(archive_tmp).with_suffix(".json").write_text(json.dumps(info, indent=1))
    spark.stop()


def build(archive: Path, driver_memory: str = "2g") -> Path:
    """Write ``archive`` (and its ``.json`` record of JDK and class path) by running one small job."""
    from lakehouse.config import load_settings
    from lakehouse.spark import LOG_TO_STDERR, runtime_jars, spark_home

    archive = archive.resolve()
    archive.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="churn-cds-") as work:
        tmp = Path(work) / archive.name
        jars = ",".join(str(j) for j in runtime_jars(load_settings("test")))
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", "local[2]", "--jars", jars,
               "--conf", "spark.ui.enabled=false", "--conf", f"spark.driver.memory={driver_memory}",
               "--conf", f"spark.driver.extraJavaOptions=-XX:ArchiveClassesAtExit={tmp} {LOG_TO_STDERR}",
               __file__, "_workload", str(tmp), work]
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if run.returncode != 0 or not tmp.is_file():
            raise RuntimeError(f"building the class archive failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        shutil.move(str(tmp.with_suffix(".json")), _sidecar(archive))
        shutil.move(str(tmp), archive)
    ok, message = verify(archive)
    if not ok:
        archive.unlink()
        raise RuntimeError(f"the class archive was written but a JVM cannot map it: {message}")
    log.info("class archive %s: %.0f MB in %.0fs, verified", archive, archive.stat().st_size / 1e6,
             time.perf_counter() - started)
    return archive


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_workload":
        _workload(argv[1], argv[2])
        return 0
    p = argparse.ArgumentParser(prog="python -m lakehouse.jvm_archive",
                                description="build (or check) the Spark driver's class-data-sharing archive")
    p.add_argument("archive", type=Path, help="where to write it, e.g. .jars/cds/spark-driver.jsa")
    p.add_argument("--check", action="store_true", help="only check that an existing archive can be mapped")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        ok, message = verify(args.archive)
        print("usable" if ok else f"not usable: {message}")
        return 0 if ok else 1
    try:
        build(args.archive)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"warning: no class archive, jobs start the slow way: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # the workload, run by spark-submit as a file
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
