"""A real distributed deployment on one machine: HDFS (Hadoop's minicluster: NameNode + DataNode in
one JVM) and a Spark standalone master + worker started from pyspark's own ``spark-class``, all on
127.0.0.1. Tests use them; ``lakehouse cluster local-run`` runs the pipeline's jobs on them with
spark-submit, as Airflow would on the cluster of ``spark-compose.yml``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from lakehouse.config import PROJECT_ROOT
from lakehouse.spark import spark_home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pipeline_env(lake_root: str, work: Path, sources: Path, api_url: str | None = None,
                 mlflow_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """Environment overrides that point the pipeline's jobs at one lake, work folder and set of
    simulated sources (``LAKEHOUSE__*`` variables, read by lakehouse.config in every process)."""
    mlflow_dir = mlflow_dir or work / "mlflow"
    env = {"LAKEHOUSE__LAKE__ROOT": lake_root, "LAKEHOUSE__LOGS_DIR": str(work / "logs"),
           "LAKEHOUSE__SOURCES__CRM__URL": f"jdbc:sqlite:{sources / 'crm' / 'crm.db'}",
           "LAKEHOUSE__SOURCES__BILLING__INBOX": str(sources / "billing" / "inbox"),
           "LAKEHOUSE__SOURCES__WEB__INBOX": str(sources / "web" / "logs"),
           "LAKEHOUSE__FEATURE_STORE__ONLINE_PATH": str(work / "online" / "features.sqlite"),
           "LAKEHOUSE__MLFLOW__TRACKING_URI": f"sqlite:///{mlflow_dir / 'mlflow.db'}",
           "LAKEHOUSE__MLFLOW__ARTIFACT_ROOT": str(mlflow_dir / "artifacts")}
    if api_url:
        env["LAKEHOUSE__SOURCES__SUPPORT_API__BASE_URL"] = api_url
    env.update(extra)
    return env


def _stop_group(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_http(url: str, proc: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s; see {log}")


class SparkStandalone:
    """Spark's standalone master and one worker (``spark-class``), bound to 127.0.0.1."""

    def __init__(self, cores: int = 2, memory: str = "3g", port: int | None = None):
        self.port, self.ui_port, self.worker_ui_port = port or free_port(), free_port(), free_port()
        self.cores, self.memory = cores, memory
        self.dir = Path(tempfile.mkdtemp(prefix="churn-spark-"))
        self.master: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        env = dict(os.environ, SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP="127.0.0.1",
                   SPARK_WORKER_DIR=str(self.dir / "work"), SPARK_LOG_DIR=str(self.dir))
        log = open(self.dir / f"{name}.log", "w")
        return subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], cwd=self.dir, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 90) -> "SparkStandalone":
        self.master = self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                  "--port", str(self.port), "--webui-port", str(self.ui_port))
        _wait_http(f"{self.ui}/json/", self.master, "Spark master", self.dir / "master.log", timeout)
        self.worker = self._spawn("worker", "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
                                  "--cores", str(self.cores), "--memory", self.memory,
                                  "--webui-port", str(self.worker_ui_port))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.status().get("aliveworkers", 0) >= 1:
                return self
            if self.worker.poll() is not None:
                raise RuntimeError(f"Spark worker exited; see {self.dir / 'worker.log'}")
            time.sleep(0.5)
        raise RuntimeError(f"no Spark worker registered with {self.url} within {timeout:.0f}s")

    def status(self) -> dict:
        """The master's JSON status: workers, running and completed applications."""
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=5) as resp:
            return json.load(resp)

    def stop(self) -> None:
        _stop_group(self.worker)
        _stop_group(self.master)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "SparkStandalone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class HdfsMiniCluster:
    """A real HDFS (NameNode + DataNode in one JVM) from Hadoop's minicluster artifact, on 127.0.0.1."""

    def __init__(self, nn_port: int | None = None, http_port: int | None = None, jars: Path | None = None):
        self.jars = jars or PROJECT_ROOT / ".jars" / "minicluster"
        self.nn_port, self.http_port = nn_port or free_port(), http_port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="churn-hdfs-"))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "HdfsMiniCluster":
        if not any(self.jars.glob("hadoop-client-minicluster-*.jar")):
            raise RuntimeError(f"minicluster JARs missing in {self.jars}; run `make jars`")
        details = self.dir / "details.json"
        cmd = ["java", "--add-opens", "java.base/java.lang=ALL-UNNAMED", "-Xmx768m",
               "-cp", f"{self.jars}/*", "org.apache.hadoop.mapreduce.MiniHadoopClusterManager",
               "-nomr", "-format", "-nnport", str(self.nn_port), "-nnhttpport", str(self.http_port),
               "-writeDetails", str(details)]
        self.log = open(self.dir / "minicluster.log", "w")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"minicluster exited with {self.proc.returncode}; see {self.dir}/minicluster.log")
            if details.exists() and details.stat().st_size:
                try:
                    with urllib.request.urlopen(f"{self.webhdfs_url}/webhdfs/v1/?op=LISTSTATUS", timeout=5):
                        return self
                except OSError:
                    pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"HDFS minicluster did not come up within {timeout}s")

    @property
    def uri(self) -> str:
        return f"hdfs://127.0.0.1:{self.nn_port}"

    @property
    def webhdfs_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        _stop_group(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "HdfsMiniCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def cluster_tasks(settings) -> list:
    """The daily DAG's tasks (``lakehouse.pipeline``) but retraining: no label matures in a few dates."""
    from lakehouse.pipeline import daily_tasks

    return [t for t in daily_tasks(settings) if t.stage != "retrain"]


def _package_zip(out: Path) -> Path:
    """The ``lakehouse`` package as a zip for ``--py-files`` (executors import it, as on a real cluster)."""
    import zipfile

    path = out / "lakehouse.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted((PROJECT_ROOT / "lakehouse").rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                zf.write(f, f.relative_to(PROJECT_ROOT))
    return path


def _launch_conf(settings) -> dict[str, str]:
    """What each spark-submit gives the JVMs of its application here: the driver what the environment asks
    for at launch (``spark.driver_launch_conf``: memory, the class archive); the executors the same class
    archive (the worker runs them from the same Spark install, whose class path the archive was written
    for); and both the short-JVM JIT options (``spark.SHORT_JVM``): a date's job lives well under a minute
    at the sizes this runner is for (measured on the cluster test's date: docs/benchmarks.md)."""
    from lakehouse.spark import SHORT_JVM, archive_path, driver_launch_conf, java_options

    conf = driver_launch_conf(settings)
    conf["spark.driver.extraJavaOptions"] = " ".join(filter(None, [conf.get("spark.driver.extraJavaOptions"), SHORT_JVM]))
    archive = archive_path(settings)
    conf["spark.executor.extraJavaOptions"] = " ".join(filter(None, [java_options(archive) if archive else "", SHORT_JVM]))
    return conf


def local_run(work: Path, customers: int = 400, days: int = 3, env_name: str = "local",
              worker_cores: int = 2, worker_memory: str = "3g", log=print, inspect=None,
              task_summary: bool = True) -> dict:
    """Generate the sources, start HDFS + Spark master/worker + the API simulator on 127.0.0.1, and
    spark-submit the daily jobs (in the DAG's order) for ``days`` dates with ``--master spark://``.

    Returns what ran where and how long: per job the wall time and exit code, the master's view of
    the workers and completed applications, and the run summary rows the jobs recorded on HDFS.
    ``inspect(hdfs, lake_uri)``, if given, is called after the jobs while HDFS is still up (tests
    read the lake there); what it returns is the result's ``inspected``. ``task_summary``: the run
    summary as ``lakehouse tasks`` prints it, in ``task_runs`` (a process and a JVM of its own; a
    caller that reads ``ops.task_runs`` itself can go without).
    """
    import datetime as dt
    import sys

    from lakehouse.config import load_settings
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import runtime_jars

    work = work.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    settings = load_settings(env_name)
    sim = settings.simulator.model_copy(update={"customers": customers, "days": max(days, 3)})
    sources = work / "sources"
    t0 = time.perf_counter()
    summary = generate_sources(sim, sources)
    log(f"sources: {customers} customers generated in {time.perf_counter() - t0:.1f}s under {sources}")
    token = os.environ.get("SUPPORT_API_TOKEN") or "local-dev-token"
    jars = ",".join(str(j) for j in runtime_jars(settings))
    py_files = _package_zip(work)
    venv_python = sys.executable
    result: dict = {"customers": customers, "dates": [], "jobs": [], "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with ApiServer(sources / "support", token, rate_limit_per_s=1000) as api, HdfsMiniCluster() as hdfs, \
            SparkStandalone(cores=worker_cores, memory=worker_memory) as cluster:
        log(f"HDFS {hdfs.uri} (WebHDFS {hdfs.webhdfs_url}); Spark {cluster.url} (UI {cluster.ui}); API {api.url}")
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=venv_python,
                   LAKEHOUSE_PROJECT_ROOT=str(PROJECT_ROOT),
                   PYSPARK_DRIVER_PYTHON=venv_python, SUPPORT_API_TOKEN=token,
                   PII_HASH_KEY=os.environ.get("PII_HASH_KEY", "local-dev-pii-key"),
                   **pipeline_env(f"{hdfs.uri}/churn", work, sources, api.url,
                                  LAKEHOUSE__LAKE__WEBHDFS_URL=hdfs.webhdfs_url))
        submit = [str(spark_home() / "bin" / "spark-submit"), "--master", cluster.url, "--deploy-mode", "client",
                  "--jars", jars, "--py-files", str(py_files), "--conf", "spark.executor.memory=1g",
                  "--conf", f"spark.cores.max={worker_cores}", "--conf", "spark.ui.enabled=false",
                  *[arg for key, value in _launch_conf(settings).items() for arg in ("--conf", f"{key}={value}")]]
        start = dt.date.fromisoformat(summary["start_date"])
        for i in range(days):
            day = (start + dt.timedelta(days=i)).isoformat()
            result["dates"].append(day)
            for task in cluster_tasks(settings):
                job = task.task_id
                t = time.perf_counter()
                proc = subprocess.run([*submit, str(PROJECT_ROOT / "jobs" / f"{task.script}.py"), "--run-date", day,
                                       "--env", env_name, *task.args], env=env, capture_output=True, text=True,
                                      timeout=1800)
                seconds = round(time.perf_counter() - t, 1)
                result["jobs"].append({"date": day, "job": job, "exit_code": proc.returncode, "seconds": seconds})
                log(f"{day} {job}: exit {proc.returncode} in {seconds}s")
                if proc.returncode != 0:
                    (work / f"{job}-{day}.out").write_text(proc.stdout + proc.stderr)
                    raise RuntimeError(f"{job} for {day} failed on {cluster.url}; output in {work / f'{job}-{day}.out'}")
        status = cluster.status()
        result["workers"] = [{k: w.get(k) for k in ("id", "host", "cores", "memory", "state")}
                             for w in status.get("workers", [])]
        result["applications"] = [{k: a.get(k) for k in ("name", "cores", "memoryperexecutor", "duration", "state")}
                                  for a in status.get("completedapps", [])]
        if task_summary:
            probe = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "lakehouse"), "--env", env_name, "tasks",
                                    "--limit", "100"], env=env, capture_output=True, text=True, timeout=600)
            result["task_runs"] = probe.stdout
        layers = {}
        for layer in ("raw", "bronze", "silver", "gold", "ops"):
            with urllib.request.urlopen(f"{hdfs.webhdfs_url}/webhdfs/v1/churn/{layer}?op=LISTSTATUS", timeout=10) as r:
                layers[layer] = sorted(f["pathSuffix"] for f in json.load(r)["FileStatuses"]["FileStatus"])
        result["hdfs_layers"] = layers
        if inspect is not None:
            result["inspected"] = inspect(hdfs, f"{hdfs.uri}/churn")
    result["seconds_total"] = round(sum(j["seconds"] for j in result["jobs"]), 1)
    (work / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result
