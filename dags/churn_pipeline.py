"""Churn pipelines: one SparkSubmitOperator per job in jobs/, for the run's logical date.

Only DAG arguments and operators live here (no pyspark, no lakehouse imports). Where the project and
its JARs are comes from Airflow Variables (``churn_project_dir``, ``churn_jars``, ``churn_env``),
rendered at run time; the Spark master and its settings come from the Airflow connection
``spark_churn``.

The driver's memory comes from the Variable ``churn_driver_memory`` (default 2g), its JVM options from
``churn_driver_java_options`` (default: map the project's class archive, see lakehouse/jvm_archive.py).

``churn_pipeline`` (daily): the four ingestion jobs in parallel -> PyDeequ validation into silver
(fails the run on error-level quality rules, so nothing downstream runs on bad data) -> gold
(activity, point-in-time feature snapshot, matured labels) -> online-store materialization ->
scoring with the champion (plus drift and realized performance) -> retraining only when the scoring
flagged drift or no champion exists yet.

``churn_training`` (weekly): retrain on everything labelled so far; the new model becomes champion
only if it beats the current one on the same out-of-time window.

``churn_maintenance`` (weekly, Saturday 12:00 UTC: away from the daily run at midnight and the weekly
training on Sunday): compact small files (jobs/maintenance.py: Delta OPTIMIZE of every partition
holding ``maintenance.compact_min_files`` files or more; no row changes). It leaves old files to
``lakehouse table vacuum`` (retention, with the versions models were trained on kept).

``churn_history_load`` (triggered by hand, never scheduled): load a range of dates as history in one
Spark application (jobs/backfill.py: ingest, silver and gold set-based, the online store once), e.g.
``airflow dags trigger churn_history_load -c '{"from": "2026-01-01", "to": "2026-03-31"}'``. Pause
``churn_pipeline`` while it runs (both write the same tables); daily runs continue from the day after.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, Param, SyncCallback
from churn_alerts import alert_on_failure

PROJECT = "{{ var.value.get('churn_project_dir', '/opt/churn') }}"
JARS = "{{ var.value.get('churn_jars', '') }}"
ENV = "{{ var.value.get('churn_env', 'local') }}"
# The driver's heap is fixed when spark-submit starts its JVM, before a job reads conf/<env>: it is
# set here (Variable ``churn_driver_memory``), else spark-submit's 1g default would apply.
DRIVER_MEMORY = "{{ var.value.get('churn_driver_memory', '2g') }}"
# The driver JVM maps the class archive `make setup` built in the project (lakehouse/jvm_archive.py;
# ~8 s off each task's start; a JVM skips a missing archive). Variable ``churn_driver_java_options``
# replaces these options: on small data, where a task's JVM lives about a minute, adding
# "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m" took 10-17 % off a task (docs/benchmarks.md).
JAVA_OPTIONS = ("{{ var.value.get('churn_driver_java_options', '-XX:SharedArchiveFile=' ~ "
                "var.value.get('churn_project_dir', '/opt/churn') ~ '/.jars/cds/spark-driver.jsa "
                "-Xlog:disable -Xlog:all=warning:stderr') }}")
SOURCES = ["crm", "billing", "web", "support_api"]

# Retry policy: 3 retries, 2 min doubling up to 30 min. The deployment may tune it through the
# environment of the scheduler/workers (read when the DAG file is parsed, no metadata-DB access).
RETRIES = int(os.environ.get("CHURN_TASK_RETRIES", "3"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("CHURN_RETRY_DELAY_SECONDS", "120")))
# A daily run still going this many hours after it was queued is late for the morning's scores.
# 0 disables it: `airflow dags test` crashes at the end of a successful run of a DAG with a deadline
# (apache/airflow#73428, open in 3.3.2), so the tests that use it switch the deadline off.
DEADLINE_HOURS = float(os.environ.get("CHURN_DEADLINE_HOURS", "3"))

default_args = {
    "owner": "data-platform",
    "retries": RETRIES,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": alert_on_failure,
}


def job(task_id: str, script: str | None = None, extra: list[str] | None = None, **kwargs) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id="spark_churn",
        application=f"{PROJECT}/jobs/{script or task_id}.py",
        application_args=["--run-date", "{{ ds }}", "--env", ENV, *(extra or [])],
        jars=JARS,
        name=f"churn-{task_id}-{{{{ ds }}}}",
        conf={"spark.ui.enabled": "false", "spark.driver.memory": DRIVER_MEMORY,
              "spark.driver.extraJavaOptions": JAVA_OPTIONS},
        **kwargs,
    )


with DAG(
    dag_id="churn_pipeline",
    description="Ingest, validate, build features and score subscription churn daily",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,  # backfills are explicit (`airflow backfill create`); each date is idempotent
    max_active_runs=1,  # dates run in order: gold for D reads the state left by D-1
    default_args=default_args,
    tags=["churn", "spark"],
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=timedelta(hours=DEADLINE_HOURS),
                           callback=SyncCallback("churn_alerts.alert_deadline_missed")) if DEADLINE_HOURS else None,
) as dag:
    ingest = [job(f"ingest_{source}") for source in SOURCES]
    silver = job("silver")
    gold = job("gold")
    materialize = job("materialize")
    score = job("score")
    retrain = job("retrain_if_flagged", script="train", extra=["--only-if-flagged"], retries=min(1, RETRIES))
    ingest >> silver >> gold >> [materialize, score]
    score >> retrain

with DAG(
    dag_id="churn_training",
    description="Weekly retraining; the champion changes only if a challenger beats it",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**default_args, "retries": min(1, RETRIES)},
    tags=["churn", "spark", "ml"],
) as training_dag:
    job("train")

with DAG(
    dag_id="churn_maintenance",
    description="Compact small files of the lake's Delta tables (OPTIMIZE; rows unchanged)",
    schedule="0 12 * * 6",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**default_args, "retries": min(1, RETRIES)},
    tags=["churn", "spark", "maintenance"],
) as maintenance_dag:
    job("compact_tables", script="maintenance")

with DAG(
    dag_id="churn_history_load",
    description="Load a range of dates as history in one pass per stage (equal to daily runs of the range)",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**default_args, "retries": min(1, RETRIES)},
    params={"from": Param(type="string", format="date", description="first date of the range, YYYY-MM-DD"),
            "to": Param(type="string", format="date", description="last date of the range, YYYY-MM-DD")},
    tags=["churn", "spark", "backfill"],
) as history_dag:
    SparkSubmitOperator(
        task_id="history_load",
        conn_id="spark_churn",
        application=f"{PROJECT}/jobs/backfill.py",
        application_args=["--run-date", "{{ params.to }}", "--from", "{{ params['from'] }}", "--env", ENV],
        jars=JARS,
        name="churn-history-load-{{ params['from'] }}-{{ params.to }}",
        conf={"spark.ui.enabled": "false", "spark.driver.memory": DRIVER_MEMORY,
              "spark.driver.extraJavaOptions": JAVA_OPTIONS},
    )
