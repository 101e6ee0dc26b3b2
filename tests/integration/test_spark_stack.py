"""The JVM side loads: Delta (write, update, time travel) and Deequ (a VerificationSuite run)."""

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lakehouse.quality_runtime import import_pydeequ


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
