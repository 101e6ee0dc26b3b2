"""A child process that writes a Delta table through the pipeline's own write path (lakehouse.delta_io),
for the crash and concurrency tests (tests/integration/test_reliability.py).

    python tests/procs/delta_writer.py crash TABLE_URI FIRST LAST
        replace the partitions of days FIRST..LAST in order (content: ``day_rows``), printing
        "ready" once Spark is up and "committed <day>" after each commit; the test kills it with
        SIGKILL at a random moment.
    python tests/procs/delta_writer.py race TABLE_URI WRITER ROUNDS BARRIER_DIR
        ROUNDS times: wait until both writers reached the barrier file of the round, then replace
        partition day 1 with this writer's content; print one JSON line per round (ok, or the error).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ROWS_PER_DAY = 3000


def day_rows(spark, day: int, writer: str = "w"):
    """Deterministic content of one partition: ROWS_PER_DAY rows, values depend on day and writer."""
    from pyspark.sql import functions as F

    return (spark.range(ROWS_PER_DAY, numPartitions=3)
            .select(F.format_string("C%07d", F.col("id")).alias("customer_id"),
                    F.lit(f"{day:03d}").alias("day"), F.lit(writer).alias("writer"),
                    (F.col("id") * day % 997).cast("double").alias("amount"),
                    F.sha2(F.concat_ws("|", F.col("id").cast("string"), F.lit(day), F.lit(writer)), 256).alias("payload")))


def main(argv: list[str]) -> int:
    from lakehouse import delta_io
    from lakehouse.config import load_settings
    from lakehouse.spark import build_session

    mode, uri = argv[0], argv[1]
    # A short-lived JVM running tiny plans: the C1 compiler alone gets it to its first commits sooner
    # (start + 3 commits: 26-30 s against 35-36 s with the default tiered C1+C2, interleaved runs on a
    # busy 2-core machine). Not for the pipeline's jobs: their longer runs lost time with C1 only.
    # Killed with SIGKILL, the JVM cannot delete its scratch (block manager folders, native libraries it
    # unpacks): keep it beside the table, in the test's own temporary folder, not in /tmp.
    scratch = Path(uri).parent / "jvm-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    conf = {"spark.driver.extraJavaOptions": f"-XX:TieredStopAtLevel=1 -Djava.io.tmpdir={scratch}",
            "spark.local.dir": str(scratch)}
    settings = load_settings("test", overrides={"spark": {"default_master": "local[1]", "conf": conf}})
    spark = build_session(settings, f"delta-writer-{mode}")
    if mode == "crash" and delta_io.is_delta(spark, uri):
        delta_io.latest_version(spark, uri)  # load the table's snapshot before the test's clock starts
    print("ready", flush=True)
    if mode == "crash":
        first, last = int(argv[2]), int(argv[3])
        for day in range(first, last + 1):
            meta = delta_io.commit_metadata(f"crash-{day}", "crash-writer", f"{day:03d}")
            delta_io.replace_partition(day_rows(spark, day), uri, "day", f"{day:03d}", meta)
            print(f"committed {day}", flush=True)
        return 0
    writer, rounds, barrier = argv[2], int(argv[3]), Path(argv[4])
    for r in range(rounds):
        (barrier / f"{writer}-{r}").touch()
        while len(list(barrier.glob(f"*-{r}"))) < 2:
            time.sleep(0.01)
        meta = delta_io.commit_metadata(f"race-{writer}-{r}", "race-writer", "001")
        started = time.perf_counter()
        try:
            attempts = delta_io.replace_partition(day_rows(spark, 1, writer), uri, "day", "001", meta)
            print(json.dumps({"round": r, "writer": writer, "ok": True, "attempts": attempts,
                              "seconds": round(time.perf_counter() - started, 2)}), flush=True)
        except Exception as exc:  # the test asserts the error is the clear conflict error
            print(json.dumps({"round": r, "writer": writer, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}),
                  flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    sys.exit(main(sys.argv[1:]))
