"""The DAG folder parses in a real Airflow with no import errors and the expected tasks."""

from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_dag_folder_has_no_import_errors_and_expected_tasks(monkeypatch):
    # Airflow's DAG processor puts the DAGs folder on sys.path (helper modules beside DAG files)
    monkeypatch.syspath_prepend(str(DAGS))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags["churn_pipeline"]
    ingest = {"ingest_crm", "ingest_billing", "ingest_web", "ingest_support_api"}
    assert {t.task_id for t in dag.tasks} == ingest | {"silver"}
    assert dag.get_task("silver").upstream_task_ids == ingest
    for task in dag.tasks:
        assert task.retries == 3 and task.retry_exponential_backoff
        assert task.application_args[:2] == ["--run-date", "{{ ds }}"]
        assert task.application.endswith(f"/jobs/{task.task_id}.py")


def test_dag_files_import_neither_pyspark_nor_lakehouse():
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        assert "import pyspark" not in text and "from pyspark" not in text, path
        assert "import lakehouse" not in text and "from lakehouse" not in text, path
