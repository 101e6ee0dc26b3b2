"""Shared fixtures: one Spark session for the whole run, test settings pointing at temp folders,
and the simulated sources generated once at test scale."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Airflow reads its home at import time: keep the tests' Airflow state out of ~/airflow, in a
# folder made only when none is set (this module is also imported by tests' child processes) and
# removed when the process ends
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="churn-airflow-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))
os.environ.setdefault("SUPPORT_API_TOKEN", "test-token")
os.environ.setdefault("PII_HASH_KEY", "test-pii-key")
TOKEN = os.environ["SUPPORT_API_TOKEN"]

from lakehouse.tools.localcluster import free_port  # noqa: E402,F401 - one helper for tests and the cluster runner


def make_settings(tmp: Path, sources_dir: Path | None = None, **overrides):
    """Test settings with the lake, logs and source folders under ``tmp``."""
    from lakehouse.config import deep_merge, load_settings

    src = sources_dir or tmp / "sources"
    base = {
        "lake": {"root": str(tmp / "lake")},
        "logs_dir": str(tmp / "logs"),
        "sources": {
            "crm": {"url": f"jdbc:sqlite:{src / 'crm' / 'crm.db'}"},
            "billing": {"inbox": str(src / "billing" / "inbox")},
            "web": {"inbox": str(src / "web" / "logs")},
        },
        "simulator": {"output_dir": str(src)},
        "feature_store": {"online_path": str(tmp / "online" / "features.sqlite")},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}",
                   "artifact_root": str(tmp / "mlflow" / "artifacts")},
    }
    return load_settings("test", overrides=deep_merge(base, overrides))


# How `make test` shares the suite between its two pytest-xdist workers (``--dist loadfile
# --no-loadscope-reorder`` with the scheduler below): a worker takes one group of test files at a time,
# in the order of the collected tests. Files that build on the same session fixture's state form one
# group, so one worker builds it once and runs them in the order a single process does (the DAG's runs
# score with the champion the model tests train; silver validates the lake the ingest and fault tests
# ingest; gold's tests and the history-load test copy one daily lake); any other file is a group of its
# own. The groups known to run longest come first, so that neither worker is left alone with a long file
# at the end while the other idles (docs/benchmarks.md, the suite's row); any other file follows in
# collection order. (xdist's own ``loadgroup`` reads groups from test ids it rewrites, which pytest 9.2
# no longer lets it do: pytest-dev/pytest-xdist#1386.)
SHARED_STATE = [
    ("tests/dags/test_dag_run.py", "tests/integration/test_models.py"),  # trained_model
    ("tests/integration/test_faults.py", "tests/integration/test_ingest.py", "tests/integration/test_silver.py"),  # ingested
    ("tests/integration/test_gold.py", "tests/integration/test_history_load.py"),  # daily_lake
]
LONGEST_FIRST = ["tests/dags/test_dag_run.py", "tests/integration/test_faults.py", "tests/integration/test_gold.py",
                 "tests/integration/test_cluster.py", "tests/integration/test_byod.py",
                 "tests/integration/test_bench_features.py", "tests/integration/test_reliability.py",
                 "tests/integration/test_hdfs_lake.py"]


def group_of(nodeid: str) -> str:
    """The group of a test: its file, or the first file of the ``SHARED_STATE`` group holding it."""
    path = nodeid.split("::", 1)[0]
    return next((group[0] for group in SHARED_STATE if path in group), path)


def pytest_collection_modifyitems(config, items):
    """The longest groups first, the tests of a group together in their collection order."""
    groups = [group_of(item.nodeid) for item in items]
    first = {}
    for i, group in enumerate(groups):
        first.setdefault(group, i)
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    order = sorted(range(len(items)), key=lambda i: (rank.get(groups[i], len(rank)), first[groups[i]], i))
    items[:] = [items[i] for i in order]


def pytest_xdist_make_scheduler(config, log):
    """Under ``--dist loadfile``: xdist's file scheduler, with ``group_of`` as the unit a worker takes."""
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own
    from xdist.scheduler import LoadFileScheduling

    class GroupScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory):
    return make_settings(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def generated_sources(test_settings):
    """The simulated source systems at test scale (300 customers x 40 days), generated once."""
    from lakehouse.simulator.systems import generate_sources

    out = Path(test_settings.simulator.output_dir)
    summary = generate_sources(test_settings.simulator, out)
    return out, summary


@pytest.fixture(scope="session")
def spark(test_settings):
    from lakehouse.spark import build_session

    session = build_session(test_settings, "tests")
    yield session
    from lakehouse.quality.runtime import shutdown_deequ

    shutdown_deequ(session)
    session.stop()


@pytest.fixture(autouse=True, scope="module")
def _release_cached_data():
    """After each test module, drop what it left cached in the session's JVM (cached frames and RDDs,
    Delta's table snapshots): one JVM serves the whole run, and without this later modules ran many
    times slower in the full suite than alone (figures in CHANGELOG.md, 2026-12-02)."""
    yield
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:  # this module started no Spark
        return
    from pyspark.sql import SparkSession

    (SparkSession.getActiveSession() or SparkSession(sc)).catalog.clearCache()
    for rdd in list(sc._jsc.getPersistentRDDs().values()):
        rdd.unpersist(False)
    sc._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


from lakehouse.pipeline import SOURCES  # noqa: E402


@pytest.fixture(scope="session")
def api(generated_sources):
    from lakehouse.simulator.api import ApiServer

    out, _ = generated_sources
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=1000) as srv:
        yield srv


@pytest.fixture(scope="session")
def lake(tmp_path_factory, generated_sources, api):
    """Settings for a lake fed by the test sources, and the first three simulated dates."""
    import datetime as dt

    out, summary = generated_sources
    settings = make_settings(tmp_path_factory.mktemp("ingest"), sources_dir=out,
                             sources={"support_api": {"base_url": api.url}})
    start = dt.date.fromisoformat(summary["start_date"])
    return settings, [start + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="session")
def ingested(spark, lake):
    """All four sources ingested for the three dates of ``lake``."""
    from lakehouse.ingest.stage import ingest_source

    settings, dates = lake
    return {(s, d): ingest_source(spark, settings, s, d) for d in dates for s in SOURCES}




DAILY_DAYS = 5
DAILY_STAGES = ["ingest", "silver", "gold", "materialize"]


@pytest.fixture(scope="session")
def daily_lake(spark, tmp_path_factory, generated_sources, api):
    """The first ``DAILY_DAYS`` simulated dates run one by one (``run_range``, what a daily schedule does)
    through ingest, silver (PyDeequ), gold (label horizon 2 days, entity checkpoints whatever their size)
    and the online store: the lake gold's tests and the history-load test compare against. Built once per
    worker; a module that writes to it works on its own copy (``copy_lake``). Also returns the
    content checksum of each date's feature snapshot as it was when that date was first written."""
    import datetime as dt

    from pyspark.sql import functions as F

    from lakehouse import delta_io, tables
    from lakehouse.pipeline import run_range

    out, summary = generated_sources
    settings = make_settings(tmp_path_factory.mktemp("daily"), sources_dir=out,
                             sources={"support_api": {"base_url": api.url}},
                             gold={"label_horizon_days": 2, "entity_checkpoint_min_mb": 0})
    start = dt.date.fromisoformat(summary["start_date"])
    dates = [start + dt.timedelta(days=i) for i in range(DAILY_DAYS)]
    first_written = {}

    def remember(day, _timings):
        snapshot = delta_io.read(spark, tables.FEATURES.uri(settings)).where(F.col("snapshot_date") == F.lit(day.isoformat()))
        first_written[day] = delta_io.content_checksum(snapshot)

    run_range(spark, settings, dates, DAILY_STAGES, on_date=remember)
    return settings, dates, first_written


def relocate(settings, dest: Path):
    """``settings`` with the lake, the online store and the logs under ``dest`` (sources and every other
    setting as they were)."""
    online = Path(settings.feature_store.online_path).name
    return settings.model_copy(update={
        "lake": settings.lake.model_copy(update={"root": str(dest / "lake")}),
        "feature_store": settings.feature_store.model_copy(update={"online_path": str(dest / "online" / online)}),
        "logs_dir": str(dest / "logs")})


def copy_lake(settings, dest: Path):
    """A copy of the lake and online store of ``settings`` under ``dest``, and settings that point at it."""
    import shutil

    copy = relocate(settings, dest)
    shutil.copytree(settings.path(settings.lake.root), copy.path(copy.lake.root))
    online = settings.path(settings.feature_store.online_path)
    if online.exists():
        copy.path(copy.feature_store.online_path).parent.mkdir(parents=True)
        shutil.copy(online, copy.path(copy.feature_store.online_path))
    return copy


ML_DAYS = 8
# every synthetic date, two folds (the ensembles' sizes and the grid are conf/test's)
ML_MODEL = {"snapshot_every_days": 1, "cv_folds": 2, "eval_fraction": 0.25}


@pytest.fixture(scope="session")
def trained_model(spark, tmp_path_factory):
    """A champion trained on synthetic gold tables (lakehouse/tools/synthetic.py): 700 customers x 8 dates."""
    import datetime as dt

    from lakehouse.ml.train import train_models
    from lakehouse.tools import synthetic as synthetic_gold

    tmp = tmp_path_factory.mktemp("ml")
    settings = make_settings(tmp, model=ML_MODEL)
    dates = synthetic_gold.write(spark, settings, dt.date(2026, 2, 1), ML_DAYS, customers=700, seed=3)
    until = dates[-1] + dt.timedelta(days=30)
    first = train_models(spark, settings, until, run_id="test-train-1")
    return settings, tmp, dates, until, first
