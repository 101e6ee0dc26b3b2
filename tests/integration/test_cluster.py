"""The distributed path: a Spark standalone master and worker and an HDFS minicluster on 127.0.0.1, and
one date's daily jobs spark-submitted to ``spark://`` with the lake on ``hdfs://`` (``make distributed``
runs the same, ``lakehouse.tools.localcluster.local_run``)."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.pipeline import SOURCES, daily_tasks
from lakehouse.spark import archive_path


@pytest.mark.slow
def test_one_date_of_daily_jobs_runs_on_a_standalone_cluster_with_the_lake_on_hdfs(spark, tmp_path, test_settings):
    from hdfs import InsecureClient

    from lakehouse.tools.localcluster import local_run

    def inspect(hdfs, lake_uri):
        """Read what the jobs wrote while HDFS is up: the raw zone through WebHDFS, the tables with Spark."""
        client = InsecureClient(hdfs.webhdfs_url)
        root = "/" + lake_uri.split("://", 1)[1].split("/", 1)[1]
        web_dates = client.list(f"{root}/raw/source=web/type=events")
        with client.read(f"{root}/raw/source=web/type=events/{web_dates[0]}/_manifest.json") as reader:
            manifest = json.load(reader)

        def read(table):
            return delta_io.read(spark, f"{lake_uri}/{table.rel}")

        silver_web = read(tables.silver("web_events"))
        return {
            "raw_sources": client.list(f"{root}/raw"),
            "web_dates": web_dates,
            "web_manifest_rows": manifest["rows"],
            "bronze_web": read(tables.bronze("web_events")).count(),
            "reconciliation": [r.asDict() for r in read(tables.RECONCILIATION).collect()],
            "silver_web_events": silver_web.where(F.col("customer_id").isNotNull() & F.col("ts").isNotNull()).count(),
            "activity_events": read(tables.ACTIVITY).agg(F.sum("events")).first()[0],
            "features": read(tables.FEATURES).count(),
            "task_runs": [(r["job"], r["status"]) for r in read(tables.TASK_RUNS).collect()],
        }

    result = local_run(tmp_path / "cluster", customers=150, days=1, env_name="test", worker_cores=1,
                       worker_memory="2g", log=lambda line: None, inspect=inspect,
                       task_summary=False)  # (inspect reads ops.task_runs)
    ran = [j["job"] for j in result["jobs"]]
    assert ran == [t.task_id for t in daily_tasks(test_settings) if t.stage != "retrain"]
    assert all(j["exit_code"] == 0 for j in result["jobs"]), result["jobs"]
    assert [w["state"] for w in result["workers"]] == ["ALIVE"]
    assert sum(a["state"] == "FINISHED" for a in result["applications"]) == len(ran)
    seen = result["inspected"]
    assert sorted(seen["raw_sources"]) == sorted(f"source={s}" for s in SOURCES)
    assert seen["web_dates"] == [f"date={result['dates'][0]}"]
    assert seen["bronze_web"] == seen["web_manifest_rows"] > 0
    assert len(seen["reconciliation"]) == 6
    for r in seen["reconciliation"]:
        assert r["balanced"] and r["bronze_rows"] == (r["silver_rows"] + r["quarantined"] + r["duplicates_removed"]
                                                      + r["superseded"]), r
    assert seen["activity_events"] == seen["silver_web_events"] > 0  # gold aggregated every event silver kept
    assert seen["features"] > 0
    assert sorted(seen["task_runs"]) == sorted((job, "success") for job in ran)
    # spark-submit gave each driver what conf/test asks for at launch, and the class archive when built
    silver_log = (tmp_path / "cluster" / "logs" / "silver" / f"{result['dates'][0]}.log").read_text()
    assert "started by spark-submit without" not in silver_log, silver_log[-2000:]
    if archive_path(test_settings):
        assert f"class archive {archive_path(test_settings)}" in silver_log, silver_log[-2000:]
