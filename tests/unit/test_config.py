import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write_conf(tmp: Path, base: str, overlay: str) -> Path:
    (tmp / "base").mkdir()
    (tmp / "dev").mkdir()
    (tmp / "base" / "p.yaml").write_text(base)
    (tmp / "dev" / "p.yaml").write_text(overlay)
    return tmp


def test_local_and_test_envs_load():
    local = load_settings("local", environ={})
    assert local.lake_uri == (ROOT / "lake").resolve().as_uri()
    assert local.sources.billing.pattern == "transactions_{date}.csv"
    assert load_settings("test", environ={}).simulator.customers == 300


def test_unknown_env_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown environment 'nope'.*known: cluster, local, test"):
        load_settings("nope")


def test_missing_key_is_named_with_files(tmp_path):
    base = (ROOT / "conf" / "base" / "pipeline.yaml").read_text()
    overlay = (ROOT / "conf" / "local" / "pipeline.yaml").read_text().replace("  root: lake\n", "")
    conf = write_conf(tmp_path, base, overlay)
    with pytest.raises(ConfigError) as err:
        load_settings("dev", conf_dir=conf, environ={})
    msg = str(err.value)
    assert "missing key 'lake.root'" in msg
    assert "base/p.yaml" in msg and "dev/p.yaml" in msg


def test_mistyped_key_and_wrong_type(tmp_path):
    base = (ROOT / "conf" / "base" / "pipeline.yaml").read_text().replace("max_attempts: 6", "max_attempts: six")
    overlay = (ROOT / "conf" / "local" / "pipeline.yaml").read_text() + "retyr:\n  x: 1\n"
    conf = write_conf(tmp_path, base, overlay)
    with pytest.raises(ConfigError) as err:
        load_settings("dev", conf_dir=conf, environ={})
    assert "unknown key 'retyr' (mistyped?)" in str(err.value)
    assert "key 'retry.max_attempts'" in str(err.value) and "'six'" in str(err.value)


def test_environment_overrides_keep_types():
    s = load_settings("local", environ={"LAKEHOUSE__RETRY__MAX_ATTEMPTS": "9",
                                        "LAKEHOUSE__LAKE__ROOT": "hdfs://127.0.0.1:9/x"})
    assert s.retry.max_attempts == 9
    assert s.is_hdfs and s.lake_uri == "hdfs://127.0.0.1:9/x"


def run_cli(*args, env=None):
    import os

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "lakehouse.cli", *args], capture_output=True, text=True,
                          env=e, cwd=ROOT, timeout=120)


def test_cli_bad_env_is_one_clear_line():
    res = run_cli("--env", "nope", "check")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith("error: unknown environment 'nope'")


def test_cli_unusable_local_lake_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = run_cli("--env", "test", "check", env={"LAKEHOUSE__LAKE__ROOT": str(blocker / "lake")})
    assert res.returncode == 2
    assert res.stderr.startswith("error: lake root file://") and "not usable" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_cli_unreachable_hdfs_lake_root():
    from tests.conftest import free_port

    port = free_port()  # nothing listens there
    res = run_cli("--env", "test", "check", env={
        "LAKEHOUSE__LAKE__ROOT": f"hdfs://127.0.0.1:{port}/lake",
        "LAKEHOUSE__LAKE__WEBHDFS_URL": f"http://127.0.0.1:{port}",
        "LAKEHOUSE__RETRY__TIMEOUT_S": "2"})
    assert res.returncode == 2
    assert res.stderr.startswith(f"error: lake root hdfs://127.0.0.1:{port}/lake is unreachable")
    assert len(res.stderr.strip().splitlines()) == 1


def test_cli_help_lists_subcommands():
    res = run_cli("--help")
    assert res.returncode == 0
    for cmd in ("config", "check", "simulate", "demo"):
        assert cmd in res.stdout


def test_launch_only_spark_settings_missing_from_spark_submit_are_named():
    from lakehouse.spark import ignored_launch_conf

    wanted = {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "2",
              "spark.driver.extraJavaOptions": "-Xss4m"}
    assert ignored_launch_conf(wanted, {"spark.driver.memory": "2g", "spark.driver.extraJavaOptions": "-Xss4m"}) == []
    lines = ignored_launch_conf(wanted, {"spark.driver.memory": "1g"})
    assert lines == ["spark.driver.memory='2g' (spark-submit gave '1g')",
                     "spark.driver.extraJavaOptions='-Xss4m' (spark-submit gave 'nothing')"]
    assert ignored_launch_conf({"spark.sql.shuffle.partitions": "2"}, {}) == []  # runtime settings apply later
    # JVM options: spark-submit may give more than the config asks for (the DAG adds the class archive's),
    # not fewer, and their order does not matter
    jit = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"}
    given = "-XX:SharedArchiveFile=/a.jsa -XX:ReservedCodeCacheSize=256m -XX:TieredStopAtLevel=1"
    assert ignored_launch_conf(jit, {"spark.driver.extraJavaOptions": given}) == []
    assert ignored_launch_conf(jit, {"spark.driver.extraJavaOptions": "-XX:SharedArchiveFile=/a.jsa"}) == [
        f"spark.driver.extraJavaOptions={jit['spark.driver.extraJavaOptions']!r} "
        "(spark-submit gave '-XX:SharedArchiveFile=/a.jsa')"]


def test_class_archive_options_only_for_a_built_archive(tmp_path):
    from lakehouse import spark
    from lakehouse.config import load_settings

    settings = load_settings("test", overrides={"spark": {"class_archive": str(tmp_path / "a.jsa")}})
    assert spark.archive_path(settings) is None  # not built: no option, the JVM starts as usual
    (tmp_path / "a.jsa").write_bytes(b"x")
    assert spark.archive_path(settings) == tmp_path / "a.jsa"
    assert spark.java_options(tmp_path / "a.jsa").split() == [
        f"-XX:SharedArchiveFile={tmp_path / 'a.jsa'}", "-Xlog:disable", "-Xlog:all=warning:stderr"]
    assert spark.archive_path(load_settings("test", overrides={"spark": {"class_archive": None}})) is None


def test_a_grid_without_values_is_refused_naming_the_parameter():
    with pytest.raises(ConfigError) as err:
        load_settings("test", environ={}, overrides={"model": {"grid": {"gbt": {"maxDepth": []}}}})
    assert "model.grid.gbt" in str(err.value) and "no values to try for maxDepth" in str(err.value)
    # the test environment's grid: conf/base's, narrowed by conf/test
    grid = load_settings("test", environ={}).model.grid
    assert grid.gbt == {"maxDepth": [3]} and grid.random_forest == {"maxDepth": [5, 8]}


def test_auto_driver_memory_is_a_third_of_the_machine_within_bounds():
    from lakehouse.config import load_settings
    from lakehouse.spark import auto_driver_memory

    gib = 2**30
    assert auto_driver_memory(24 * gib) == "8g"
    assert auto_driver_memory(4 * gib) == "2g"  # never below 2g
    assert auto_driver_memory(256 * gib) == "16g"  # nor above 16g
    assert load_settings("local").spark.conf["spark.driver.memory"] == "auto"


def test_spark_submit_gets_every_launch_setting_the_environment_sets(tmp_path):
    """``driver_launch_conf`` hands spark-submit each ``LAUNCH_ONLY_CONF`` key of ``spark.conf``, so that a
    submitted job's driver never starts without one (``ignored_launch_conf`` then finds nothing to warn of)."""
    from lakehouse import spark
    from lakehouse.config import load_settings

    archive = tmp_path / "a.jsa"
    conf = {"spark.driver.memory": "3g", "spark.driver.extraJavaOptions": "-Xss4m",
            "spark.driver.extraClassPath": "/opt/extra.jar", "spark.sql.shuffle.partitions": "4"}
    settings = load_settings("test", overrides={"spark": {"class_archive": str(archive), "conf": conf}})
    assert spark.driver_launch_conf(settings) == {"spark.driver.memory": "3g", "spark.driver.extraJavaOptions": "-Xss4m",
                                                  "spark.driver.extraClassPath": "/opt/extra.jar"}
    archive.write_bytes(b"x")  # built: its options first, the environment's own after them
    launch = spark.driver_launch_conf(settings)
    assert launch["spark.driver.extraJavaOptions"] == f"{spark.java_options(archive)} -Xss4m"
    assert spark.ignored_launch_conf(settings.spark.conf, launch) == []
    auto = load_settings("test", overrides={"spark": {"class_archive": None, "conf": {"spark.driver.memory": "auto"}}})
    assert "spark.driver.memory" not in spark.driver_launch_conf(auto)  # spark-submit's own memory then
