"""Compaction (lakehouse.maintenance): crowded partitions become one file, rows stay, a re-run does nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from lakehouse import delta_io
from lakehouse.maintenance import compact_lake, file_layout

DAY = dt.date(2026, 3, 1)


def _commit(uri: str, version: int) -> dict:
    log = Path(uri.removeprefix("file:")) / "_delta_log" / f"{version:020d}.json"
    return next(json.loads(line)["commitInfo"] for line in log.read_text().splitlines() if "commitInfo" in line)


def test_compaction_rewrites_only_crowded_partitions_keeps_every_row_and_is_idempotent(spark, tmp_path):
    from conftest import make_settings

    settings = make_settings(tmp_path)
    lake = Path(settings.lake.root)
    dated, flat = str(lake / "gold" / "dated"), str(lake / "ops" / "flat")
    for i in range(5):  # five appends to one date, one to another; five to an unpartitioned table
        rows = spark.range(i * 100, i * 100 + 100, numPartitions=1).selectExpr("id", "cast(id % 7 as string) AS k")
        rows.selectExpr("id", "k", "'2026-02-01' AS d").write.format("delta").mode("append").partitionBy("d").save(dated)
        rows.write.format("delta").mode("append").save(flat)
    spark.range(0, 3, numPartitions=1).selectExpr("id", "'x' AS k", "'2026-02-02' AS d").write.format("delta").mode("append") \
        .partitionBy("d").save(dated)
    sums = {uri: delta_io.content_checksum(delta_io.read(spark, uri)) for uri in (dated, flat)}
    versions = {uri: delta_io.latest_version(spark, uri) for uri in (dated, flat)}
    assert file_layout(spark, dated)["per_partition"] == {(("d", "2026-02-01"),): 5, (("d", "2026-02-02"),): 1}

    planned = compact_lake(spark, settings, DAY, "maint-1", dry_run=True)
    assert {r["table"]: (r["partitions_to_compact"], r["files_in_them"]) for r in planned["results"]} == {
        "gold.dated": (1, 5), "ops.flat": (1, 5)}
    assert {uri: delta_io.latest_version(spark, uri) for uri in (dated, flat)} == versions  # a dry run writes nothing

    done = compact_lake(spark, settings, DAY, "maint-1")
    assert done["tables_compacted"] == 2 and (done["files_before"], done["files_after"]) == (11, 3)
    assert file_layout(spark, dated)["per_partition"] == {(("d", "2026-02-01"),): 1, (("d", "2026-02-02"),): 1}
    assert file_layout(spark, flat)["files"] == 1
    for uri in (dated, flat):
        assert delta_io.content_checksum(delta_io.read(spark, uri)) == sums[uri]  # no row changed
        assert delta_io.latest_version(spark, uri) == versions[uri] + 1
        info = _commit(uri, versions[uri] + 1)
        assert info["operation"] == "OPTIMIZE"
        assert json.loads(info["userMetadata"]) == {"job": "maintenance", "run_date": "2026-03-01", "run_id": "maint-1"}
        # the versions before compaction still read the same (time travel)
        assert delta_io.content_checksum(spark.read.format("delta").option("versionAsOf", versions[uri]).load(uri)) \
            == sums[uri]
    # the untouched partition kept its file: compaction rewrote only the crowded one
    assert json.loads(_commit(dated, versions[dated] + 1)["operationMetrics"]["numRemovedFiles"]) == 5

    again = compact_lake(spark, settings, DAY, "maint-2")
    assert again["tables_compacted"] == 0 and again["files_after"] == 3
    assert {uri: delta_io.latest_version(spark, uri) for uri in (dated, flat)} == \
        {uri: v + 1 for uri, v in versions.items()}
