"""Faults at the edges, each with its expected outcome and nothing lost (docs/reliability.md lists them).

Billing files are built from the simulator's real files and damaged on purpose; each goes through the
real ingestion (raw zone, bronze) and the real PyDeequ validation into silver. The support API runs
slow or rate-limited on a real HTTP server.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.errors import SourceError
from lakehouse.ingest.stage import ingest_source
from lakehouse.silver.stage import validate_and_report
from lakehouse.simulator.api import ApiServer
from lakehouse.storage import storage_for
from tests.conftest import TOKEN, make_settings

LENIENT = {"gate_min_rows": 10**9}  # rate gates off: each damaged file has only a few bad rows


@pytest.fixture(scope="module")
def edge(spark, tmp_path_factory, generated_sources, api):
    out, summary = generated_sources
    tmp = tmp_path_factory.mktemp("faults")
    inbox = tmp / "inbox"
    inbox.mkdir()
    settings = make_settings(tmp, sources_dir=out, sources={"billing": {"inbox": str(inbox)},
                                                           "support_api": {"base_url": api.url}},
                             quality=LENIENT)
    start = dt.date.fromisoformat(summary["start_date"])
    return settings, inbox, out / "billing" / "inbox", start


def _lines(src: Path, day: dt.date) -> list[bytes]:
    return (src / f"transactions_{day}.csv").read_bytes().splitlines(keepends=True)


def _deliver(inbox: Path, day: dt.date, data: bytes) -> None:
    (inbox / f"transactions_{day}.csv").write_bytes(data)


def _run(spark, settings, day):
    ingest_source(spark, settings, "crm", day)
    ingested = ingest_source(spark, settings, "billing", day)
    result = validate_and_report(spark, settings, day, tables=["customers", "transactions"])
    return ingested.types[0], next(o for o in result.tables if o.table == "transactions")


def _bronze_day(spark, settings, day):
    return delta_io.read(spark, tables.bronze("billing_transactions").uri(settings)).where(
        F.col("_ingest_date") == F.lit(str(day)).cast("date"))


def _quarantine(spark, settings, day):
    return delta_io.read(spark, tables.silver("quarantine_billing").uri(settings)).where(
        F.col("_ingest_date") == F.lit(str(day)).cast("date"))


def _reconciles(spark, settings, day, outcome):
    assert outcome.bronze_rows == _bronze_day(spark, settings, day).count() and outcome.balanced, outcome


def test_truncated_corrupt_and_wrongly_encoded_lines_are_quarantined_verbatim(spark, edge):
    settings, inbox, src, start = edge
    day = start
    lines = _lines(src, day)
    header, body = lines[0], lines[1:]
    latin1 = body[3].decode().replace(",paid,", ",payé,").encode("latin-1")
    damaged = [header, *body[:3], latin1, b"\x00\xff\xfe\x81 binary garbage\n", *body[4:]]
    data = b"".join(damaged)
    data = data[: len(data) - 12]  # truncated in the middle of the last line
    _deliver(inbox, day, data)
    ingested, outcome = _run(spark, settings, day)

    assert ingested.bronze_rows == len(damaged) - 1 and ingested.parse_errors == 3
    bad = {r["_line"]: r for r in _bronze_day(spark, settings, day).where(F.col("_parse_error").isNotNull()).collect()}
    assert sorted(bad) == [5, 6, len(damaged)]
    assert "not valid UTF-8" in bad[5]["_parse_error"] and "not valid UTF-8" in bad[6]["_parse_error"]
    assert bad[len(damaged)]["_raw_record"] == damaged[-1][:-12].decode().rstrip("\n")
    q = _quarantine(spark, settings, day).collect()
    assert sorted((r["_line"], r["rule"], r["reason_code"]) for r in q) == [(n, "parseable", "UNPARSEABLE") for n in sorted(bad)]
    _reconciles(spark, settings, day, outcome)
    # the raw zone holds the delivered bytes, damage included
    raw = storage_for(settings).read_bytes(f"raw/source=billing/type=transactions/date={day}/transactions_{day}.csv")
    assert raw == data


def test_a_removed_required_column_quarantines_every_row_and_is_reported(spark, edge):
    settings, inbox, src, start = edge
    day = start + dt.timedelta(days=1)
    rows = [ln.decode().rstrip("\n").split(",") for ln in _lines(src, day)]
    drop = rows[0].index("amount")
    _deliver(inbox, day, "".join(",".join(c for i, c in enumerate(r) if i != drop) + "\n" for r in rows).encode())
    ingested, outcome = _run(spark, settings, day)
    assert ingested.missing_columns == ["amount"]
    assert outcome.silver_rows == 0 and outcome.quarantined == len(rows) - 1
    reasons = {(r["rule"], r["reason_code"]) for r in _quarantine(spark, settings, day).collect()}
    assert reasons == {("amount_complete", "MISSING")}, reasons
    _reconciles(spark, settings, day, outcome)


def test_retyped_values_and_out_of_date_records(spark, edge):
    settings, inbox, src, start = edge
    day = start + dt.timedelta(days=2)
    lines = _lines(src, day)
    header, body = lines[0].decode(), [ln.decode() for ln in lines[1:]]
    cols = header.strip().split(",")
    a, b = cols.index("amount"), cols.index("billed_at")

    def edit(line, col, value):
        cells = line.rstrip("\n").split(",")
        cells[col] = value
        return ",".join(cells) + "\n"

    body[0] = edit(body[0], a, "twelve")                           # text in a number column
    body[1] = edit(body[1], b, f"{day - dt.timedelta(days=9)}T10:00:00Z")  # late: dated 9 days before
    body[2] = edit(body[2], b, f"{day + dt.timedelta(days=5)}T10:00:00Z")  # dated after the run date
    _deliver(inbox, day, (header + "".join(body)).encode())
    _, outcome = _run(spark, settings, day)
    q = {r["_line"]: (r["rule"], r["reason_code"]) for r in _quarantine(spark, settings, day).collect()}
    assert q == {2: ("amount_type", "TYPE"), 4: ("billed_at_not_future", "OUT_OF_RANGE")}, q  # line 3 (late) kept
    silver = delta_io.read(spark, tables.silver("transactions").uri(settings))
    late_id = body[1].split(",")[cols.index("transaction_id")]
    late = silver.where(F.col("transaction_id") == late_id).collect()
    assert len(late) == 1 and "billed_at_on_time" in str(late[0]["_warnings"]), late  # kept, flagged on the row
    _reconciles(spark, settings, day, outcome)


def test_the_same_records_delivered_twice_are_stored_once(spark, edge):
    settings, inbox, src, start = edge
    first = start + dt.timedelta(days=3)
    _deliver(inbox, first, b"".join(_lines(src, first)))
    _run(spark, settings, first)
    silver_uri = tables.silver("transactions").uri(settings)
    before = delta_io.content_checksum(delta_io.read(spark, silver_uri), exclude=["_run_id", "_ingested_at"])
    _run(spark, settings, first)  # the same file again for the same date: a re-run
    assert delta_io.content_checksum(delta_io.read(spark, silver_uri), exclude=["_run_id", "_ingested_at"]) == before
    # the next day's file repeats all of the previous day's records
    second = first + dt.timedelta(days=1)
    again = _lines(src, first)[1:]
    _deliver(inbox, second, b"".join(_lines(src, second)) + b"".join(again))
    # the repeated records that reached silver the first time (a simulated fault can keep one out)
    stored_first = {r[0] for r in delta_io.read(spark, silver_uri).where(
        F.col("_ingest_date") == F.lit(str(first)).cast("date")).select("transaction_id").collect()}
    repeated_stored = sum(1 for line in again if line.split(b",")[0].decode() in stored_first)
    assert 0 < repeated_stored <= len(again)
    _, outcome = _run(spark, settings, second)
    silver = delta_io.read(spark, silver_uri)
    assert silver.groupBy("transaction_id").count().where("count > 1").count() == 0
    assert outcome.already_stored == repeated_stored
    assert outcome.silver_rows + outcome.quarantined == len(_lines(src, second)) - 1 + len(again)
    _reconciles(spark, settings, second, outcome)


def test_a_slow_api_is_retried_then_fails_clearly_and_a_429_storm_is_waited_out(spark, edge, generated_sources, tmp_path):
    settings, _, _, start = edge
    out, _ = generated_sources
    day = start + dt.timedelta(days=5)
    timeout = {"retry": {"timeout_s": 0.5, "max_attempts": 2, "initial_wait_s": 0.05, "max_wait_s": 0.1}}
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=1000, slow_rate=1.0, slow_seconds=2) as slow:
        s = make_settings(tmp_path / "slow", sources_dir=out, sources={"support_api": {"base_url": slow.url}}, **timeout)
        with pytest.raises(SourceError) as err:
            ingest_source(spark, s, "support_api", day)
    assert "failed after 2 attempt(s)" in str(err.value) and "nothing was written" in str(err.value)
    assert "Timeout" in str(err.value) or "timed out" in str(err.value)
    assert not storage_for(s).exists(f"raw/source=support_api/type=tickets/date={day}")
    # a source that answers 429 most of the time: Retry-After is honoured and the day completes
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=1) as busy:
        s = make_settings(tmp_path / "busy", sources_dir=out,
                          sources={"support_api": {"base_url": busy.url, "page_size": 1}},
                          retry={"max_attempts": 8, "max_wait_s": 2})
        result = ingest_source(spark, s, "support_api", day)
        assert busy.stats["429"] >= 2
    clean = make_settings(tmp_path / "clean", sources_dir=out,
                          sources={"support_api": {"base_url": settings.sources.support_api.base_url}})
    ingest_source(spark, clean, "support_api", day)
    for t in result.types:
        name = t.bronze_table.split(".")[1]
        drop = ["_run_id", "_ingested_at", "_source_file", "_line"]
        assert delta_io.content_checksum(delta_io.read(spark, tables.bronze(name).uri(s)), exclude=drop) == \
            delta_io.content_checksum(delta_io.read(spark, tables.bronze(name).uri(clean)), exclude=drop)
    shutil.rmtree(tmp_path / "busy", ignore_errors=True)
