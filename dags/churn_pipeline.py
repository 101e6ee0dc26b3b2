"""Daily churn pipeline: one SparkSubmitOperator per job in jobs/, for the run's logical date.

Only DAG arguments and operators live here. Where the project and its JARs are comes from Airflow
Variables (``churn_project_dir``, ``churn_jars``, ``churn_env``), rendered at run time; the Spark
master comes from the Airflow connection ``spark_churn``.

Today: the four ingestion jobs in parallel, then PyDeequ validation into silver (which fails the run
on error-level quality rules, so later stages do not run on bad data). Gold, features and scoring
join as those jobs land.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG
from churn_alerts import alert_on_failure

PROJECT = "{{ var.value.get('churn_project_dir', '/opt/churn') }}"
JARS = "{{ var.value.get('churn_jars', '') }}"
ENV = "{{ var.value.get('churn_env', 'local') }}"
SOURCES = ["crm", "billing", "web", "support_api"]

default_args = {
    "owner": "data-platform",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": alert_on_failure,
}

with DAG(
    dag_id="churn_pipeline",
    description="Ingest, validate and score subscription churn daily",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,  # backfills are explicit (`airflow backfill create`); each date is idempotent
    max_active_runs=1,
    default_args=default_args,
    tags=["churn", "spark"],
) as dag:
    ingest = [
        SparkSubmitOperator(
            task_id=f"ingest_{source}",
            conn_id="spark_churn",
            application=f"{PROJECT}/jobs/ingest_{source}.py",
            application_args=["--run-date", "{{ ds }}", "--env", ENV],
            jars=JARS,
            name=f"churn-ingest-{source}-{{{{ ds }}}}",
            conf={"spark.ui.enabled": "false"},
        )
        for source in SOURCES
    ]
    silver = SparkSubmitOperator(
        task_id="silver",
        conn_id="spark_churn",
        application=f"{PROJECT}/jobs/silver.py",
        application_args=["--run-date", "{{ ds }}", "--env", ENV],
        jars=JARS,
        name="churn-silver-{{ ds }}",
        conf={"spark.ui.enabled": "false"},
    )
    ingest >> silver
