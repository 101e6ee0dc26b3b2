"""The history load (``pipeline.load_history``) against daily runs of the same dates, table by table.

Two lakes from one set of simulated sources: one fed date by date (conftest's ``daily_lake``: ``run_range``,
what a daily schedule does), one by a single history load of the same range (silver and gold set-based).
Every bronze, silver and gold table must hold the same rows (run ids and load timestamps aside), and the
next date's daily run must leave both lakes equal again.
"""

import datetime as dt

import pytest

from lakehouse import delta_io, tables
from lakehouse.pipeline import compile_range, load_history, run_range
from lakehouse.storage import storage_for
from lakehouse.tools.backfill_check import RUN_COLUMNS
from lakehouse.versioning import lake_tables
from tests.conftest import copy_lake, make_settings, relocate

STAGES = ["ingest", "silver", "gold"]  # what the daily lake ran, the online store aside


def _checksums(spark, settings) -> dict:
    out = {}
    for layer, name in lake_tables(spark, settings):
        if layer == "ops":
            continue
        uri = storage_for(settings).join(f"{layer}/{name}")
        out[f"{layer}.{name}"] = delta_io.content_checksum(delta_io.read(spark, uri), exclude=[*RUN_COLUMNS, "_covers"])
    return out


@pytest.fixture(scope="module")
def lakes(spark, daily_lake, tmp_path_factory):
    """The session's daily lake (a copy: the next date is run on it here) and a history load of its dates
    into a new lake with the same settings."""
    built, dates, _ = daily_lake
    daily = copy_lake(built, tmp_path_factory.mktemp("daily"))
    history = relocate(built, tmp_path_factory.mktemp("history"))
    loaded = load_history(spark, history, dates[0], dates[-1], STAGES, today=dates[-1])
    return daily, history, dates, loaded


def test_a_history_load_leaves_the_tables_daily_runs_leave(spark, lakes):
    daily, history, dates, loaded = lakes
    assert loaded["dates"] == len(dates) and set(loaded["seconds"]) == {*STAGES, "total"}
    assert loaded["rows"]["silver"] > 1000 and loaded["rows"][tables.LABELS.name] > 100
    a, b = _checksums(spark, daily), _checksums(spark, history)
    assert set(a) == set(b)
    assert {t for t in a if t.startswith("gold.")} >= {"gold.customer_daily_features", "gold.churn_labels"}
    different = {t: (a[t], b[t]) for t in a if a[t] != b[t]}
    assert not different
    # the load is recorded as one run in the ledger, with the silver and gold tables it wrote
    from lakehouse.versioning import ledger

    written = {r["table"] for r in ledger(spark, history, loaded["run_id"]).where("role = 'write'").collect()}
    assert {"silver.customers", "gold.customer_daily_features"} <= written


def test_daily_runs_continue_after_a_history_load_and_a_reload_changes_nothing(spark, lakes):
    daily, history, dates, _ = lakes
    before = _checksums(spark, history)
    # an overlapping reload, with Spark's code generation (as a range of quality.compile_min_mb or more
    # runs where SQL is interpreted) and the range's checked rows cached on disk only (as a range too
    # large for the storage memory is): the same tables, and every session interpreted again after it
    compiled = history.model_copy(update={"quality": history.quality.model_copy(
        update={"compile_min_mb": 0.0, "history_cache": "disk"})})
    assert compile_range(spark, compiled, dates[1], dates[2]) and not compile_range(spark, history, dates[1], dates[2])
    load_history(spark, compiled, dates[1], dates[2], ["silver", "gold"], today=dates[-1])
    sessions = [spark, *spark.__dict__.get("_lakehouse_children", [])]
    assert len(sessions) > 1 and {s.conf.get("spark.sql.codegen.wholeStage") for s in sessions} == {"false"}
    assert _checksums(spark, history) == before
    following = dates[-1] + dt.timedelta(days=1)
    for s in (daily, history):
        run_range(spark, s, [following], STAGES)
    assert _checksums(spark, daily) == _checksums(spark, history)


def test_a_reversed_or_future_range_is_refused_in_one_line(spark, lakes):
    _, history, dates, _ = lakes
    with pytest.raises(ValueError, match="reversed"):
        load_history(spark, history, dates[2], dates[0], today=dates[-1])
    with pytest.raises(ValueError, match="future"):
        load_history(spark, history, dates[0], dates[-1] + dt.timedelta(days=3), today=dates[-1])


def test_a_missing_file_in_the_middle_of_a_range_names_the_source_and_date_and_writes_no_bronze(
        spark, tmp_path, generated_sources, api, lakes):
    import shutil

    from lakehouse.errors import SourceError

    _, _, dates, _ = lakes
    out, _ = generated_sources
    inbox = tmp_path / "inbox"
    shutil.copytree(out / "billing" / "inbox", inbox)
    gone = sorted(inbox.glob(f"*{dates[1]}*"))
    assert gone
    for f in gone:
        f.unlink()
    settings = make_settings(tmp_path, sources_dir=out, sources={"support_api": {"base_url": api.url},
                                                                 "billing": {"inbox": str(inbox)}},
                             retry={"max_attempts": 1})
    with pytest.raises(SourceError) as err:
        load_history(spark, settings, dates[0], dates[2], ["ingest"], today=dates[-1])
    message = str(err.value)
    assert "billing on 1 date(s)" in message and str(dates[1]) in message and "nothing was written to bronze" in message
    for name in ("billing_transactions", "web_events", "crm_customers"):  # no source's bronze was written
        assert not delta_io.is_delta(spark, tables.bronze(name).uri(settings))
