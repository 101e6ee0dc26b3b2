"""The lake on a real HDFS (Hadoop minicluster on 127.0.0.1): raw through WebHDFS, Delta through Spark."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lakehouse import delta_io, tables
from lakehouse.ingest.stage import RUN_METADATA, ingest_source
from lakehouse.pipeline import SOURCES  # noqa: E402
from lakehouse.simulator.api import ApiServer
from lakehouse.storage import HdfsStorage, storage_for
from tests.conftest import TOKEN, free_port, make_settings
from tests.servers import HdfsMiniCluster


@pytest.fixture(scope="module")
def hdfs():
    cluster = HdfsMiniCluster(free_port(), free_port()).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def hdfs_settings(hdfs, generated_sources, tmp_path_factory):
    out, _ = generated_sources
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=1000) as api:
        yield make_settings(tmp_path_factory.mktemp("hdfs"), sources_dir=out,
                            lake={"root": f"{hdfs.uri}/lake", "webhdfs_url": hdfs.webhdfs_url},
                            sources={"support_api": {"base_url": api.url}})


def test_three_dates_into_hdfs_and_a_rerun_changes_nothing(spark, hdfs_settings, generated_sources):
    _, summary = generated_sources
    settings = hdfs_settings
    assert settings.is_hdfs
    storage = storage_for(settings)
    assert isinstance(storage, HdfsStorage)
    start = dt.date.fromisoformat(summary["start_date"])
    dates = [start + dt.timedelta(days=i) for i in range(3)]
    results = {(s, d): ingest_source(spark, settings, s, d) for d in dates for s in SOURCES}

    # raw partitions and manifests are on HDFS, read back through WebHDFS
    for (source, day), result in results.items():
        for t in result.types:
            assert t.raw_path.startswith(settings.lake_uri)
            manifest = json.loads(storage.read_bytes(f"raw/source={source}/type={t.type}/date={day}/_manifest.json"))
            assert manifest["rows"] == t.rows_fetched == t.bronze_rows

    names = sorted({t.bronze_table.split(".")[1] for r in results.values() for t in r.types})
    uris = {n: tables.bronze(n).uri(settings) for n in names}
    assert all(u.startswith("hdfs://127.0.0.1:") for u in uris.values())
    before = {n: delta_io.content_checksum(delta_io.read(spark, u), RUN_METADATA) for n, u in uris.items()}
    for source in SOURCES:
        ingest_source(spark, settings, source, dates[1])
    after = {n: delta_io.content_checksum(delta_io.read(spark, u), RUN_METADATA) for n, u in uris.items()}
    assert after == before
    assert before["web_events"][0] == sum(results[("web", d)].types[0].rows_fetched for d in dates)
    listing = [n for n, _, _ in storage.list_dir("raw/source=web/type=events")]
    assert listing == [f"date={d}" for d in dates]
