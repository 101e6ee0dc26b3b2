"""The walkthrough's screenshots, taken for real: a DAG run in Airflow and the models in MLflow,
photographed by Debian's headless chromium (through chromedriver and Selenium).

``lakehouse walkthrough --out docs/img/walkthrough``:

1. generates the simulated sources (small) and serves the support API on 127.0.0.1;
2. trains a demo champion on synthetic gold tables (``lakehouse.tools.synthetic``), because a real
   champion needs 30+ labelled days, i.e. a long backfill; the MLflow pages show that run;
3. runs ``airflow dags test churn_pipeline <date>`` (the real DAG: spark-submit per job);
4. starts ``airflow api-server`` and ``mlflow server`` on 127.0.0.1 and photographs the DAG graph,
   the run's grid, a task's log, the experiment and the registered model.

Needs ``requirements-docs.txt`` (Selenium) and the Debian packages chromium and chromium-driver.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lakehouse.config import PROJECT_ROOT, load_settings
from lakehouse.errors import LakehouseError
from lakehouse.tools.localcluster import _wait_http, free_port, pipeline_env

log = logging.getLogger(__name__)


def _browser(width: int = 1600, height: int = 1000):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise LakehouseError("Selenium is missing: .venv/bin/pip install -r requirements-docs.txt") from None
    driver_path = shutil.which("chromedriver")
    if not driver_path or not shutil.which("chromium"):
        raise LakehouseError("chromium and chromedriver are needed: apt-get install chromium chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def _shot(browser, url: str, path: Path, wait_text: str | None = None, settle: float = 4.0,
          timeout: float = 60, clicks: tuple[str, ...] = ()) -> Path:
    """Open ``url``, wait for ``wait_text``, click every element matching each CSS selector in
    ``clicks`` (close a side panel, expand a row), then save the screenshot."""
    from selenium.webdriver.common.by import By

    browser.get(url)
    deadline = time.time() + timeout
    while wait_text and time.time() < deadline:
        if wait_text in browser.find_element(By.TAG_NAME, "body").text:
            break
        time.sleep(1)
    else:
        if wait_text:
            log.warning("%s: %r not seen within %.0fs; taking the screenshot anyway", url, wait_text, timeout)
    for css in clicks:
        for element in browser.find_elements(By.CSS_SELECTOR, css):
            try:
                element.click()
            except Exception as exc:  # noqa: BLE001 - a cosmetic click must not lose the screenshot
                log.debug("click %s: %s", css, exc)
    time.sleep(settle)
    browser.save_screenshot(str(path))
    log.info("screenshot %s <- %s", path, url)
    return path


def _finished_run(text: str) -> str | None:
    """The run id of a successful ``airflow dags test`` from its output."""
    import re

    m = re.search(r"DagRun Finished: .*?run_id=([^,\s]+),.*?state=success", text)
    return m.group(1) if m else None


def run(out: Path, work: Path, customers: int = 300, shots_only: bool = False) -> dict:
    """Everything above; ``shots_only`` reuses ``work`` from a previous run and only photographs."""
    from lakehouse.ml.train import train_models
    from lakehouse.quality.runtime import shutdown_deequ
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session, runtime_jars
    from lakehouse.tools import synthetic, tracking

    work = work.resolve()
    out = out.resolve()
    if not shots_only:
        shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    mlflow_db = work / "mlflow" / "mlflow.db"
    common = {"mlflow": {"tracking_uri": f"sqlite:///{mlflow_db}", "artifact_root": str(work / "mlflow" / "artifacts")}}
    base = load_settings("local", overrides=common)
    sources = work / "sources"
    ml_settings = load_settings("local", overrides={**common, "lake": {"root": str(work / "ml-lake")},
                                                    "model": {"snapshot_every_days": 1, "cv_folds": 2,
                                                              "eval_fraction": 0.25}})
    champion = None
    if not shots_only:
        summary = generate_sources(base.simulator.model_copy(update={"customers": customers}), sources)
        day = summary["start_date"]
        # 1. the demo champion, on synthetic gold tables in a lake of their own
        spark = build_session(ml_settings, "walkthrough-train")
        try:
            dates = synthetic.write(spark, ml_settings, dt.date(2026, 2, 1), 8, customers=700, seed=3)
            champion = train_models(spark, ml_settings, dates[-1] + dt.timedelta(days=30),
                                    run_id="walkthrough-train").champion_version
        finally:
            shutdown_deequ(spark)
            spark.stop()

    # 2. the real DAG for one date
    token = os.environ.get("SUPPORT_API_TOKEN") or "local-dev-token"
    venv_bin = Path(sys.executable).parent
    home = work / "airflow"
    env = dict(os.environ, PATH=f"{venv_bin}:{os.environ['PATH']}", PYSPARK_PYTHON=sys.executable,
               SPARK_LOCAL_IP="127.0.0.1", SUPPORT_API_TOKEN=token,
               PII_HASH_KEY=os.environ.get("PII_HASH_KEY", "local-dev-pii-key"),
               AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
               AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
               CHURN_DEADLINE_HOURS="0",  # `dags test` + a deadline crashes: apache/airflow#73428
               AIRFLOW_CONN_SPARK_CHURN='{"conn_type": "spark", "host": "local[2]"}',
               AIRFLOW_VAR_CHURN_PROJECT_DIR=str(PROJECT_ROOT),
               AIRFLOW_VAR_CHURN_JARS=",".join(str(j) for j in runtime_jars(base)), AIRFLOW_VAR_CHURN_ENV="local",
               **pipeline_env(str(work / "lake"), work, sources, mlflow_dir=mlflow_db.parent))
    airflow = str(venv_bin / "airflow")
    procs: list[subprocess.Popen] = []
    shots: dict[str, str] = {}
    dag_seconds = None
    try:
        # the API server first (the UI; and what `dags test --use-executor` would need). Plain
        # `dags test` runs the tasks in-process: their output goes to dags-test.log, not to the task
        # log store, so the UI's log view is empty for this run. `--use-executor` stores the logs but
        # stalled after the ingestion tasks here (SQLite, LocalExecutor), so it is not used.
        import secrets

        af_port, ml_port = free_port(), free_port()
        af, ml = f"http://127.0.0.1:{af_port}", f"http://127.0.0.1:{ml_port}"
        env |= {"AIRFLOW__API__BASE_URL": af, "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(af_port),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16)}
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
        logs = open(work / "servers.log", "a")
        procs.append(subprocess.Popen([airflow, "api-server", "--host", "127.0.0.1", "--port", str(af_port)], env=env,
                                      stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_http(f"{af}/api/v2/monitor/health", procs[0], "airflow api-server", work / "servers.log", 180)
        if not shots_only:
            with ApiServer(sources / "support", token, rate_limit_per_s=1000) as api:
                env["LAKEHOUSE__SOURCES__SUPPORT_API__BASE_URL"] = api.url
                t = time.perf_counter()
                dag_run = subprocess.run([airflow, "dags", "test", "churn_pipeline", day], env=env,
                                         capture_output=True, text=True, timeout=3600)
                (work / "dags-test.log").write_text(dag_run.stdout + dag_run.stderr)
                dag_seconds = round(time.perf_counter() - t, 1)
        log_file = work / "dags-test.log"
        run_id = _finished_run(log_file.read_text()) if log_file.exists() else None
        if not run_id:
            raise LakehouseError(f"no successful `airflow dags test` run in {log_file}")

        # 3. the UIs, on 127.0.0.1
        procs.append(subprocess.Popen([str(venv_bin / "mlflow"), "server", "--backend-store-uri",
                                       tracking.tracking_uri(ml_settings), "--host", "127.0.0.1", "--port",
                                       str(ml_port)], env=env, stdout=logs, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        _wait_http(f"{ml}/health", procs[1], "mlflow server", work / "servers.log", 180)
        exp_id = tracking.client(ml_settings).get_experiment_by_name(tracking.experiment_name(ml_settings)).experiment_id
        browser = _browser()
        try:
            shots["airflow_grid"] = str(_shot(browser, f"{af}/dags/churn_pipeline/runs/{run_id}", out / "airflow-run-grid.png",
                                              "retrain_if_flagged"))
            browser.execute_script("window.localStorage.setItem('default_dag_view', JSON.stringify('graph'));")
            shots["airflow_graph"] = str(_shot(browser, f"{af}/dags/churn_pipeline", out / "airflow-dag-graph.png",
                                               "ingest_support_api"))
            browser.execute_script("window.localStorage.setItem('default_dag_view', JSON.stringify('grid'));")
            shots["airflow_task_log"] = str(_shot(browser, f"{af}/dags/churn_pipeline/runs/{run_id}/tasks/silver",
                                                  out / "airflow-task-log.png", "silver", settle=6))
            # MLflow 3 opens an assistant side panel: close it; expand the parent run to show its children
            close = "button[aria-label='Close']"
            shots["mlflow_experiment"] = str(_shot(
                browser, f"{ml}/#/experiments/{exp_id}/runs", out / "mlflow-experiment.png", "train-",
                clicks=(close, "button[data-component-id*='runnamecellrenderer']")))
            shots["mlflow_model"] = str(_shot(browser, f"{ml}/#/models/{ml_settings.model.name}",
                                              out / "mlflow-registered-model.png", "Version", clicks=(close,)))
        finally:
            browser.quit()
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 15)
    return {"dag_run_id": run_id, "dags_test_seconds": dag_seconds, "screenshots": shots,
            "champion_version": champion, "work": str(work)}
