"""Run summary: one row per job execution in ``ops/task_runs`` (success or failure).

Every job in ``jobs/`` appends a row when it ends: status, duration, rows in and out, the quality
result (silver: passed, or which rules failed), the error if any, and, when Airflow ran it, the DAG
run, task and try number (from the ``AIRFLOW_CTX_*`` variables Airflow sets for a task's process,
which spark-submit passes on to the driver). ``lakehouse tasks`` shows a DAG run or a date.
"""

from __future__ import annotations

import logging
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import Settings

log = logging.getLogger(__name__)

SCHEMA = ("run_id string, job string, run_date string, status string, seconds double, rows_in long, "
          "rows_out long, quality string, error string, dag_id string, dag_run_id string, task_id string, "
          "try_number int")


def counts(job: str, summary: dict | None) -> tuple[int | None, int | None, str]:
    """(rows in, rows out, quality result) from a job's result summary."""
    if not isinstance(summary, dict):
        return None, None, "n/a"
    if "types" in summary:  # ingestion: fetched from the source -> bronze
        types = summary["types"]
        return (sum(t.get("rows_fetched", 0) for t in types), sum(t.get("bronze_rows", 0) for t in types),
                f"{sum(t.get('parse_errors', 0) for t in types)} unparseable")
    if "tables" in summary:  # silver: bronze -> silver (+ quarantine)
        tables = summary["tables"]
        failed = [t["table"] for t in tables if t.get("failures")]
        quarantined = sum(t.get("quarantined", 0) for t in tables)
        quality = (f"failed: {', '.join(failed)}" if failed else "passed") + f"; {quarantined} quarantined"
        return sum(t.get("bronze_rows", 0) for t in tables), sum(t.get("silver_rows", 0) for t in tables), quality
    rows = summary.get("rows")
    if isinstance(rows, int):
        return None, rows, "n/a"
    if isinstance(rows, dict) and rows:
        return None, sum(v for v in rows.values() if isinstance(v, int)), "n/a"
    for key in ("scored", "customers", "rows_written"):
        if isinstance(summary.get(key), int):
            return None, summary[key], "n/a"
    return None, None, "n/a"


def record(spark: SparkSession, settings: Settings, run_id: str, job: str, run_date: str, status: str,
           seconds: float, summary: dict | None = None, error: str | None = None) -> None:
    rows_in, rows_out, quality = counts(job, summary)
    if error and isinstance(summary, dict) and "tables" in summary:
        quality = quality if quality.startswith("failed") else f"failed; {quality}"
    env = os.environ
    try_number = env.get("AIRFLOW_CTX_TRY_NUMBER")
    row = (run_id, job, run_date, status, round(float(seconds), 2), rows_in, rows_out, quality,
           (error or None) and error[:2000], env.get("AIRFLOW_CTX_DAG_ID"), env.get("AIRFLOW_CTX_DAG_RUN_ID"),
           env.get("AIRFLOW_CTX_TASK_ID"), int(try_number) if try_number and try_number.isdigit() else None)
    df = spark.createDataFrame([row], SCHEMA).withColumn("run_date", F.col("run_date").cast("date")) \
        .withColumn("recorded_at", F.current_timestamp())
    delta_io.append(df, tables.TASK_RUNS.uri(settings), delta_io.commit_metadata(run_id, "task_runs", run_date))


def summary(spark: SparkSession, settings: Settings, dag_run_id: str | None = None,
            run_date: str | None = None) -> DataFrame:
    from lakehouse.errors import LakehouseError

    uri = tables.TASK_RUNS.uri(settings)
    if not delta_io.is_delta(spark, uri):
        raise LakehouseError(f"no task runs recorded yet at {uri}")
    df = delta_io.read(spark, uri)
    if dag_run_id:
        df = df.where(F.col("dag_run_id") == dag_run_id)
    if run_date:
        df = df.where(F.col("run_date") == F.lit(run_date).cast("date"))
    return df.orderBy("recorded_at")
