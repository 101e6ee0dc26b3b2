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
    # the DAG is the pipeline definition (lakehouse.pipeline), task for task and edge for edge
    from lakehouse.config import load_settings
    from lakehouse.pipeline import daily_tasks

    tasks = daily_tasks(load_settings("test"))
    assert [t.task_id for t in tasks][:4] == ["ingest_crm", "ingest_billing", "ingest_web", "ingest_support_api"]
    assert {t.task_id for t in dag.tasks} == {t.task_id for t in tasks}
    for t in tasks:
        op = dag.get_task(t.task_id)
        assert op.upstream_task_ids == set(t.after), t.task_id
        assert op.application.endswith(f"/jobs/{t.script}.py")
        assert op.application_args[4:] == list(t.args), t.task_id
    assert dag.get_task("score").upstream_task_ids == {"gold"}
    assert dag.get_task("retrain_if_flagged").upstream_task_ids == {"score"}
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.deadline, "a deadline alert on the daily run"
    for task in dag.tasks:
        assert task.retry_exponential_backoff and task.retries >= 1
        assert task.on_failure_callback
        assert task.application_args[:2] == ["--run-date", "{{ ds }}"]
        assert task._conn_id == "spark_churn"
    assert dag.get_task("retrain_if_flagged").application_args[-1] == "--only-if-flagged"
    training = bag.dags["churn_training"]
    assert [t.task_id for t in training.tasks] == ["train"]
    assert training.timetable.expression == "0 0 * * 0"  # @weekly
    assert dag.timetable.expression == "0 0 * * *"  # @daily
    maintenance = bag.dags["churn_maintenance"]
    from lakehouse.pipeline import maintenance_tasks

    assert [(t.task_id, t.application.rsplit("/", 1)[1]) for t in maintenance.tasks] == [
        (t.task_id, f"{t.script}.py") for t in maintenance_tasks()]
    assert maintenance.timetable.expression == "0 12 * * 6" and maintenance.max_active_runs == 1
    assert all(t.on_failure_callback and t.retries >= 1 for t in maintenance.tasks)
    history = bag.dags["churn_history_load"]
    load = history.get_task("history_load")
    assert type(history.timetable).__name__ == "NullTimetable" and history.max_active_runs == 1  # by hand only
    assert load.application.endswith("/jobs/backfill.py") and load.on_failure_callback
    assert load.application_args[:4] == ["--run-date", "{{ params.to }}", "--from", "{{ params['from'] }}"]
    assert set(history.params) == {"from", "to"}


def test_dag_files_import_neither_pyspark_nor_lakehouse():
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        assert "import pyspark" not in text and "from pyspark" not in text, path
        assert "import lakehouse" not in text and "from lakehouse" not in text, path


def test_the_dags_default_driver_options_are_the_ones_the_project_builds(monkeypatch, tmp_path):
    """The DAG may not import the project, so its Jinja default for ``churn_driver_java_options`` spells
    out ``lakehouse.spark.java_options`` of the class archive ``make setup`` builds: the two must agree."""
    monkeypatch.syspath_prepend(str(DAGS))
    from types import SimpleNamespace

    import churn_pipeline
    from jinja2 import Template

    from lakehouse.config import load_settings
    from lakehouse.spark import java_options

    def render(template: str, variables: dict) -> str:
        # Airflow's template context exposes Variables as ``var.value.get(name, default)``
        var = SimpleNamespace(value=SimpleNamespace(get=lambda name, default=None: variables.get(name, default)))
        return Template(template).render(var=var)

    archive = load_settings("test").spark.class_archive
    assert render(churn_pipeline.JAVA_OPTIONS, {"churn_project_dir": str(tmp_path)}) == java_options(tmp_path / archive)
    assert render(churn_pipeline.JAVA_OPTIONS, {}) == java_options(Path("/opt/churn") / archive)
    assert render(churn_pipeline.JAVA_OPTIONS, {"churn_driver_java_options": "-Xss4m"}) == "-Xss4m"
