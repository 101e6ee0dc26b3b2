"""The JVM side loads: Delta (write, update, time travel) and Deequ (a VerificationSuite run)."""

import py4j.protocol
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lakehouse import jvm_names
from lakehouse.quality.runtime import import_pydeequ


def test_delta_write_update_and_time_travel(spark, tmp_path):
    from delta.tables import DeltaTable

    path = str(tmp_path / "t")
    first = spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string")
    first.write.format("delta").save(path)
    DeltaTable.forPath(spark, path).update(F.col("id") == 2, {"v": F.lit("B")})
    assertDataFrameEqual(spark.read.format("delta").load(path),
                         spark.createDataFrame([(1, "a"), (2, "B")], "id int, v string"))
    assertDataFrameEqual(spark.read.format("delta").option("versionAsOf", 0).load(path), first)
    history = DeltaTable.forPath(spark, path).history().select("version", "operation").collect()
    assert [(r.version, r.operation) for r in sorted(history)] == [(0, "WRITE"), (1, "UPDATE")]


def test_deequ_verification_suite_runs(spark):
    import_pydeequ()
    from pydeequ.checks import Check, CheckLevel
    from pydeequ.verification import VerificationResult, VerificationSuite

    df = spark.createDataFrame([(1, 5.0), (2, -1.0), (2, None)], "id int, amount double")
    check = (Check(spark, CheckLevel.Error, "billing")
             .isComplete("amount").isUnique("id").isNonNegative("amount").hasSize(lambda n: n == 3))
    result = VerificationSuite(spark).onData(df).addCheck(check).run()
    rows = VerificationResult.checkResultsAsDataFrame(spark, result).select(
        "constraint", "constraint_status").collect()
    status = {r.constraint.split("(")[0]: r.constraint_status for r in rows}
    assert status == {"CompletenessConstraint": "Failure", "UniquenessConstraint": "Failure",
                      "ComplianceConstraint": "Failure", "SizeConstraint": "Success"}


def test_last_commit_read_from_the_log_matches_delta_history(spark, tmp_path):
    from delta.tables import DeltaTable

    from lakehouse import delta_io

    path = str(tmp_path / "log")
    spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string").write.format("delta").save(path)
    fresh = spark.createDataFrame([(2, "b"), (3, "c"), (4, "d")], "id int, v string")
    assert delta_io.merge_insert_only(spark, path, fresh, ["id"], "{}") == 2
    assert delta_io.merge_insert_only(spark, path, fresh, ["id"], "{}") == 0  # no commit at all
    spark.createDataFrame([(5, "e")], "id int, v string").write.format("delta").mode("append").save(path)
    last = DeltaTable.forPath(spark, path).history(1).select("version", "operation", "operationMetrics").first()
    version, info = delta_io.last_commit(spark, path)
    assert (version, info["operation"], info["operationMetrics"]) == (2, "WRITE", last["operationMetrics"])
    assert last["version"] == version == delta_io.latest_version(spark, path)
    assert delta_io.last_commit_rows(spark, path) == (2, 1)
    # the newest commits, newest first, as Delta's history has them (the run ledger reads these)
    entries = DeltaTable.forPath(spark, path).history(3).select("version", "operation", "operationMetrics",
                                                                "userMetadata").collect()
    assert [(v, i["operation"], i["operationMetrics"], i.get("userMetadata"))
            for v, i in delta_io.commits(spark, path, 3)] == [tuple(r) for r in entries]
    assert [v for v, _ in delta_io.commits(spark, path, 10)] == [2, 1, 0]
    assert delta_io.latest_version(spark, str(tmp_path / "none")) is None


def test_checksums_by_value_equal_each_filtered_checksum(spark):
    from lakehouse import delta_io

    rows = [("a", 1, None), ("a", 2, "x"), ("b", 1, "y"), ("c", None, None), ("c", None, None)]
    df = spark.createDataFrame(rows, "k string, n int, s string")
    by_k = delta_io.checksums_by(df, "k")
    assert set(by_k) == {"a", "b", "c"}
    for key, sums in by_k.items():
        assert sums == delta_io.content_checksum(df.where(df.k == key)), key
    assert [by_k[k][0] for k in "abc"] == [2, 1, 2]
    assert by_k["a"] != by_k["c"] and len({s for _, s in by_k.values()}) == 3
    # excluded columns leave the checksum as if they were not there
    assert delta_io.checksums_by(df.withColumn("_run_id", df.n * 7), "k", exclude=["_run_id"]) == by_k


def test_the_driver_jvm_maps_the_class_archive_setup_built(spark, test_settings):
    """`make setup` writes the driver's class-data-sharing archive; the tests' JVM was started with
    it, on the JDK and class path the archive records, and a JVM that must map it (-Xshare:on) starts."""
    import json

    from lakehouse import jvm_archive
    from lakehouse.spark import archive_path

    archive = archive_path(test_settings)
    assert archive is not None, "no class archive: `make setup` builds .jars/cds/spark-driver.jsa"
    jvm = spark.sparkContext._jvm
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={archive}" in args and "-Xlog:all=warning:stderr" in args
    recorded = json.loads(archive.with_suffix(".json").read_text())
    assert jvm.System.getProperty("java.class.path") == recorded["class_path"]
    assert jvm.System.getProperty("java.home") == recorded["java_home"]
    usable, message = jvm_archive.verify(archive)
    assert usable, message


def test_java_names_are_looked_up_once_and_field_values_every_time(spark):
    jvm = spark._jvm
    assert isinstance(jvm, jvm_names._View)  # set up by build_session
    assert jvm_names.remember_names(jvm) is jvm and type(jvm) is jvm_names._View  # a second call changes nothing
    functions = jvm.org.apache.spark.sql.functions
    assert jvm.org.apache.spark.sql.functions is functions  # kept: the same object, no second lookup
    assert "functions" in jvm.org.apache.spark.sql.__dict__ and "sql" in jvm.org.apache.spark.__dict__
    assert functions.abs is functions.abs and "abs" in functions.__dict__  # a static method, kept
    assert F.col("x")._jc.toString() == "x"  # PySpark's own calls go through the same view
    system = jvm.java.lang.System
    system.setProperty("churn.names.test", "1")
    assert system.getProperty("churn.names.test") == "1"
    built = jvm.java.lang.StringBuilder("churn")  # a kept class still constructs
    assert built.append("-names").toString() == "churn-names"
    assert jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1
    assert "MAX_VALUE" not in jvm.java.lang.Integer.__dict__  # a field's value is read every time
    with pytest.raises(py4j.protocol.Py4JError):
        jvm.java.lang.Integer.noSuchMember
    assert "noSuchMember" not in jvm.java.lang.Integer.__dict__


def test_a_name_registered_for_a_lake_deleted_since_moves_to_the_next_lake(spark, tmp_path):
    """The session catalog outlives a lake (a benchmark's scratch lake, deleted at its end): registering
    the next lake's tables forgets the stale entry instead of failing on its missing folder."""
    import shutil

    from lakehouse import catalog
    from lakehouse.config import load_settings

    ddl = tmp_path / "scratch_ddl.sql"
    ddl.write_text("CREATE DATABASE IF NOT EXISTS scratch;\n"
                   "CREATE TABLE IF NOT EXISTS scratch.moved (id INT) USING DELTA LOCATION '${lake}/scratch/moved';\n")
    lakes = [load_settings("test", overrides={"lake": {"root": str(tmp_path / name)}}) for name in ("a", "b")]
    catalog.register(spark, lakes[0], files=[ddl])
    spark.sql("INSERT INTO scratch.moved VALUES (1)")
    shutil.rmtree(tmp_path / "a")
    assert catalog.register(spark, lakes[1], files=[ddl]) == ["scratch.moved"]
    spark.sql("INSERT INTO scratch.moved VALUES (2), (3)")
    assert spark.table("scratch.moved").count() == 2
    assert (tmp_path / "b" / "scratch" / "moved" / "_delta_log").is_dir()
    spark.sql("DROP TABLE scratch.moved")


def test_a_cache_goes_to_disk_only_when_it_would_fill_more_than_half_the_storage_memory(spark):
    from pyspark import StorageLevel

    from lakehouse.errors import ConfigError
    from lakehouse.spark import CACHE_PER_FILE_BYTE, cache_level, storage_memory_mb

    room = storage_memory_mb(spark)
    # the test session's driver holds the cache: its storage memory is a share of its heap
    heap_mb = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**20
    assert 0 < room < heap_mb
    fits, does_not = 0.4 * room / CACHE_PER_FILE_BYTE, 0.6 * room / CACHE_PER_FILE_BYTE
    assert cache_level(spark, "auto", fits, "small") == StorageLevel.MEMORY_AND_DISK_DESER
    assert cache_level(spark, "auto", does_not, "large") == StorageLevel.DISK_ONLY
    # a choice made in the settings is kept whatever the size
    assert cache_level(spark, "memory", does_not, "large") == StorageLevel.MEMORY_AND_DISK_DESER
    assert cache_level(spark, "disk", fits, "small") == StorageLevel.DISK_ONLY
    with pytest.raises(ConfigError, match="'offheap'"):
        cache_level(spark, "offheap", fits, "small")
