"""Ingestion of all four sources into the raw zone and bronze, against real servers and real Delta."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.errors import SourceError
from lakehouse.ingest.stage import RUN_METADATA, ingest_source
from lakehouse.pipeline import SOURCES  # noqa: E402
from lakehouse.simulator.api import ApiServer
from lakehouse.storage import storage_for
from lakehouse.tables import Table
from tests.conftest import TOKEN, free_port, make_settings

ROOT = Path(__file__).resolve().parents[2]


def bronze_checksums(spark, settings, names):
    return {n: delta_io.content_checksum(delta_io.read(spark, tables.bronze(n).uri(settings)), RUN_METADATA)
            for n in names}


def bronze_names(ingested):
    return sorted({t.bronze_table.split(".", 1)[1] for r in ingested.values() for t in r.types})


def test_all_sources_three_dates_land_in_raw_and_bronze(spark, lake, ingested):
    settings, dates = lake
    storage = storage_for(settings)
    assert len(bronze_names(ingested)) == 6
    for (source, day), result in ingested.items():
        for t in result.types:
            manifest = json.loads(storage.read_bytes(
                f"raw/source={source}/type={t.type}/date={day}/_manifest.json"))
            assert manifest["rows"] == t.rows_fetched
            assert t.bronze_rows == t.rows_fetched, (source, t.type, day)
            table = delta_io.read(spark, Table("bronze", t.bronze_table.split(".")[1]).uri(settings))
            assert table.where(F.col("_ingest_date") == F.lit(str(day)).cast("date")).count() == t.rows_fetched
    assert sum(r.types[0].rows_fetched for (s, _), r in ingested.items() if s == "web") > 1000


def test_rerun_of_a_date_leaves_tables_and_raw_unchanged(spark, lake, ingested):
    settings, dates = lake
    names = bronze_names(ingested)
    before = bronze_checksums(spark, settings, names)
    storage = storage_for(settings)
    raw_before = {s: storage.list_dir(f"raw/source={s}/type={settings.source_types(s)[0]}/date={dates[1]}")
                  for s in SOURCES}
    for source in SOURCES:
        ingest_source(spark, settings, source, dates[1])
    assert bronze_checksums(spark, settings, names) == before
    for s in SOURCES:
        listing = storage.list_dir(f"raw/source={s}/type={settings.source_types(s)[0]}")
        assert [n for n, _, _ in listing] == [f"date={d}" for d in dates]  # no duplicate or temp partitions
        assert storage.list_dir(f"raw/source={s}/type={settings.source_types(s)[0]}/date={dates[1]}") == raw_before[s]


def test_raw_bytes_are_the_source_files(lake, ingested, generated_sources):
    settings, dates = lake
    out, _ = generated_sources
    storage = storage_for(settings)
    day = dates[0]
    pairs = [("billing", "transactions", f"transactions_{day}.csv", out / "billing" / "inbox" / f"transactions_{day}.csv"),
             ("web", "events", f"date={day}__events.jsonl", out / "web" / "logs" / f"date={day}" / "events.jsonl")]
    for source, type_, name, original in pairs:
        raw = storage.read_bytes(f"raw/source={source}/type={type_}/date={day}/{name}")
        assert hashlib.sha256(raw).hexdigest() == hashlib.sha256(original.read_bytes()).hexdigest()
        manifest = json.loads(storage.read_bytes(f"raw/source={source}/type={type_}/date={day}/_manifest.json"))
        assert manifest["files"][0]["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()


def test_malformed_lines_are_counted_and_kept_verbatim(spark, lake, ingested, generated_sources):
    settings, dates = lake
    out, _ = generated_sources
    truth = [json.loads(line) for line in (out / "ground_truth" / "faults.jsonl").read_text().splitlines()]
    days = {str(d) for d in dates}
    for source, table in (("web", "web_events"), ("billing", "billing_transactions")):
        expected = sum(1 for f in truth if f["source"] == source and f["fault"] == "malformed" and f["date"] in days)
        bad = (delta_io.read(spark, tables.bronze(table).uri(settings)).where(F.col("_parse_error").isNotNull())
               .select("_ingest_date", "_source_file", "_line", "_raw_record", "_parse_error").collect())
        assert len(bad) == expected, source
        assert sum(r.types[0].parse_errors for (s, _), r in ingested.items() if s == source) == expected
    # the kept raw text is exactly the line of the file named, at the line named
    web_bad = (delta_io.read(spark, tables.bronze("web_events").uri(settings))
               .where(F.col("_parse_error").isNotNull()).first())
    assert web_bad is not None and web_bad._parse_error.startswith("JSON syntax")
    day = web_bad._ingest_date
    lines = (out / "web" / "logs" / f"date={day}" / "events.jsonl").read_text().splitlines()
    assert lines[web_bad._line - 1] == web_bad._raw_record


def test_schema_change_is_kept_and_visible(spark, lake, generated_sources):
    settings, _ = lake
    _, summary = generated_sources
    change = dt.date.fromisoformat(summary["schema_change_date"])
    result = ingest_source(spark, settings, "billing", change)
    assert result.types[0].new_columns == ["tax_amount"]
    uri = tables.bronze("billing_transactions").uri(settings)
    table = delta_io.read(spark, uri)
    assert "tax_amount" in table.columns
    day_rows = table.where(F.col("_ingest_date") == F.lit(str(change)).cast("date"))
    assert day_rows.where(F.col("tax_amount").isNotNull()).count() > 0
    from delta.tables import DeltaTable

    last = DeltaTable.forPath(spark, uri).history(1).first()
    assert json.loads(last.userMetadata)["new_columns"] == ["tax_amount"]
    # rows of earlier dates keep the column, null: nothing was rewritten
    assert table.where(F.col("_ingest_date") < F.lit(str(change)).cast("date")).where(
        F.col("tax_amount").isNotNull()).count() == 0


def test_transient_api_failures_are_retried_to_the_same_result(spark, lake, generated_sources, tmp_path):
    settings, dates = lake
    out, _ = generated_sources
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=1000, failure_rate=0.2, seed=3) as flaky:
        s = make_settings(tmp_path, sources_dir=out,
                          sources={"support_api": {"base_url": flaky.url, "page_size": 1}})
        result = ingest_source(spark, s, "support_api", dates[0])
        assert flaky.stats["503"] >= 1
    clean = make_settings(tmp_path / "clean", sources_dir=out,
                          sources={"support_api": {"base_url": settings.sources.support_api.base_url}})
    ingest_source(spark, clean, "support_api", dates[0])
    for t in result.types:
        name = t.bronze_table.split(".")[1]
        flaky_rows = delta_io.read(spark, tables.bronze(name).uri(s)).drop(*RUN_METADATA, "_source_file", "_line")
        clean_rows = delta_io.read(spark, tables.bronze(name).uri(clean)).drop(*RUN_METADATA, "_source_file", "_line")
        assert sorted(map(tuple, flaky_rows.collect())) == sorted(map(tuple, clean_rows.collect()))
    audit = delta_io.read(spark, tables.INGEST_AUDIT.uri(s)).where(F.col("run_id") == result.run_id)
    statuses = {r.status for r in audit.select("status").collect()}
    assert statuses == {"ok", "retry"}
    assert audit.where("status = 'retry'").where(F.col("error").contains("HTTP 503")).count() == flaky.stats["503"]


def test_api_down_fails_clearly_and_writes_nothing(spark, lake, ingested):
    settings, dates = lake
    names = bronze_names(ingested)
    before = bronze_checksums(spark, settings, names)
    dead = make_settings(Path(settings.lake.root).parent, sources_dir=Path(settings.simulator.output_dir),
                         sources={"support_api": {"base_url": f"http://127.0.0.1:{free_port()}"}})
    new_day = dates[-1] + dt.timedelta(days=1)
    with pytest.raises(SourceError) as err:
        ingest_source(spark, dead, "support_api", new_day)
    msg = str(err.value)
    assert f"ingest of support_api for {new_day} failed after {settings.retry.max_attempts} attempt(s)" in msg
    assert "ConnectionError" in msg and "nothing was written" in msg
    assert not storage_for(dead).exists(f"raw/source=support_api/type=tickets/date={new_day}")
    assert bronze_checksums(spark, dead, names) == before
    audit = delta_io.read(spark, tables.INGEST_AUDIT.uri(dead)).where(F.col("run_date") == str(new_day))
    assert audit.count() == settings.retry.max_attempts
    assert audit.where("status = 'failed'").count() == 1


def test_lake_ls_lists_partitions_with_manifests(lake, ingested):
    from lakehouse.browse import format_partitions, raw_partitions

    settings, dates = lake
    parts = list(raw_partitions(storage_for(settings), source="web"))
    assert [p["date"] for p in parts][:3] == [str(d) for d in dates]
    assert all(p["rows"] and p["bytes"] > 0 and p["attempts"] == 1 for p in parts[:3])
    text = format_partitions(parts)
    assert "web" in text and str(dates[0]) in text


def test_job_under_spark_submit_and_its_failure_message(lake, tmp_path, generated_sources):
    settings, dates = lake
    out, _ = generated_sources
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=f"{venv_bin}:{os.environ['PATH']}", PYSPARK_PYTHON=sys.executable,
               LAKEHOUSE__LAKE__ROOT=str(tmp_path / "lake"), LAKEHOUSE__LOGS_DIR=str(tmp_path / "logs"),
               LAKEHOUSE__SOURCES__BILLING__INBOX=str(out / "billing" / "inbox"))
    jars = ",".join(str(p) for p in sorted((ROOT / ".jars" / "runtime").glob("*.jar")))
    submit = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]", "--jars", jars,
              "--conf", "spark.ui.enabled=false", str(ROOT / "jobs" / "ingest_billing.py")]
    ok = subprocess.run(submit + ["--run-date", str(dates[0]), "--env", "test"], env=env, capture_output=True,
                        text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    log_file = tmp_path / "logs" / "ingest_billing" / f"{dates[0]}.log"
    assert "bronze.billing_transactions" in log_file.read_text()
    bad = subprocess.run(submit + ["--run-date", "2030-01-01", "--env", "test"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2, bad.stderr[-3000:]
    # spark-submit's PythonRunner forwards the Python driver's stderr to its own stdout
    output = bad.stdout + bad.stderr
    bad_line = next((ln for ln in output.splitlines() if ln.startswith("error:")), output[-3000:])
    assert bad_line.startswith("error: ingest of billing for 2030-01-01 failed after 1 attempt(s): "
                               "billing: no file for 2030-01-01"), bad_line


def test_parsed_files_keep_every_line_key_and_column_as_parsing_each_line_says(spark, tmp_path):
    """Bronze's rows of JSON files of two dates, read in one pass, against each line parsed on its own
    (``bronze.parse_line``): keys nobody expected become columns, an expected key sent only as null is
    not missing, one never sent is, and malformed lines are rows with their reason and raw text. 70
    expected columns: their presence takes two 63-bit words."""
    from lakehouse.ingest.bronze import parse_line, parse_partitions

    expected = [f"c{i:02d}" for i in range(70)]
    days = {"2026-01-01": [], "2026-01-02": []}
    for n, day in enumerate(days):
        for i in range(40):
            rec = {c: f"{c}-{n}-{i}" for c in expected[:60]}
            rec["c65"] = None  # sent, always empty
            rec["c68"] = {"nested": [i, 1.5]} if i % 7 == 0 else True
            if i % 10 == 3:
                rec["extra_b"] = i  # a key nobody expected, in some records
            if n == 1 and i == 5:
                rec["extra.a`x"] = "odd name"
            days[day].append(json.dumps(rec))
        days[day] += ["{broken json", "[1, 2]", '{"c00": "\ufffd"}']
    partitions = []
    for day, lines in days.items():
        folder = tmp_path / f"date={day}"
        folder.mkdir()
        (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
        partitions.append((str(folder), ["events.jsonl"], {}, day))

    df, extra, missing, n_rows, n_bad, cached = parse_partitions(spark, partitions, "json", expected)
    rows = {(r["_ingest_date"], r["_line"]): r.asDict() for r in df.collect()}
    cached.unpersist()

    parsed = {(day, i + 1): parse_line(line, "json", None) for day, lines in days.items() for i, line in enumerate(lines)}
    keys = {k for rec, _ in parsed.values() if rec for k in rec}
    assert extra == sorted(keys - set(expected)) == ["extra.a`x", "extra_b"]
    assert missing == [c for c in expected if c not in keys] == [f"c{i}" for i in (60, 61, 62, 63, 64, 66, 67, 69)]
    assert "c65" not in missing and "c68" not in missing
    assert df.columns == expected + extra + ["_source_file", "_line", "_parse_error", "_raw_record", "_ingest_date"]
    assert n_rows == len(rows) == len(parsed) == 86
    assert n_bad == sum(err is not None for _, err in parsed.values()) == 6
    for (day, line), (rec, err) in parsed.items():
        row = rows[(day, line)]
        assert row["_source_file"] == "events.jsonl" and row["_parse_error"] == err
        assert row["_raw_record"] == (days[day][line - 1] if err else None)
        assert {c: row[c] for c in expected + extra} == {c: (rec or {}).get(c) for c in expected + extra}
    assert rows[("2026-01-01", 1)]["c68"] == '{"nested": [0, 1.5]}' and rows[("2026-01-01", 2)]["c68"] == "true"
