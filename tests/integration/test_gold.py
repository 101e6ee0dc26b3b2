"""Gold on the real pipeline: five simulated dates through ingest, silver (PyDeequ), gold, online store.

Label horizon 2 days, so labels exist for the first three snapshot dates.
"""

import csv
import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from lakehouse import catalog, delta_io, tables
from lakehouse.gold import entities, entity_store, features, stage
from lakehouse.gold.stage import build_gold
from tests.conftest import copy_lake, make_settings

HORIZON = 2  # conftest's daily_lake


@pytest.fixture(scope="module")
def gold_lake(daily_lake, tmp_path_factory, generated_sources):
    """A copy of the session's daily lake (five dates): these tests write to it."""
    settings, dates, first_written = daily_lake
    assert settings.gold.label_horizon_days == HORIZON and settings.gold.entity_checkpoint_min_mb == 0
    return copy_lake(settings, tmp_path_factory.mktemp("gold")), dates, first_written, generated_sources[0]


def _partition(spark, settings, table, col, day):
    return delta_io.read(spark, table.uri(settings)).where(F.col(col) == F.lit(day.isoformat()))


def test_snapshot_is_unchanged_by_data_that_arrived_later(spark, gold_lake):
    settings, dates, first_written, _ = gold_lake
    for day in dates:  # later dates landed after each was written
        assert delta_io.content_checksum(_partition(spark, settings, tables.FEATURES, "snapshot_date", day)) == \
            first_written[day], day
    recomputed = delta_io.content_checksum(stage.build_snapshot(spark, settings, dates[1]))
    assert first_written[dates[1]][0] > 150
    assert recomputed == first_written[dates[1]]  # three more dates landed in between


def test_incremental_snapshots_equal_a_full_recompute_from_silver(spark, gold_lake):
    settings, dates, _, _ = gold_lake
    full_daily = stage.build_activity(spark, settings, dates[-1], through=True).cache()
    stored_daily = delta_io.read(spark, tables.ACTIVITY.uri(settings))
    assert delta_io.content_checksum(stored_daily) == delta_io.content_checksum(full_daily)
    for day in dates:
        stored = _partition(spark, settings, tables.FEATURES, "snapshot_date", day)
        rebuilt = stage.build_snapshot(spark, settings, day, daily=full_daily)
        assert delta_io.content_checksum(stored) == delta_io.content_checksum(rebuilt), day
        # the lifetime state, rolled forward from the day before, equals one pass over the rebuild
        state = _partition(spark, settings, tables.LIFETIME_STATE, "as_of_date", day).drop("as_of_date")
        one_pass = features.lifetime(features.known_on(full_daily, day))
        assert delta_io.content_checksum(state) == delta_io.content_checksum(one_pass), day
    # ...and the stored states after the first date were indeed rolled, not recomputed
    assert stage.build_state(spark, settings, dates[3])[1] == f"rolled forward from {dates[2]}"
    assert stage.build_state(spark, settings, dates[0])[1] == "full pass over the daily activity"
    full_daily.unpersist()


def test_the_history_load_of_gold_equals_the_dates_run_one_by_one(spark, gold_lake, tmp_path):
    """``build_gold_range`` over the five dates (on a copy of the lake with gold removed) leaves every
    gold table equal to the daily runs', checkpoints included (the copy keeps silver's files)."""
    import shutil

    settings, dates, _, _ = gold_lake
    copy = copy_lake(settings, tmp_path)
    shutil.rmtree(copy.path(copy.lake.root) / "gold")
    assert copy.lake_uri != settings.lake_uri
    result = stage.build_gold_range(spark, copy, dates[0], dates[-1])
    assert result.rows[tables.FEATURES.name] > 500 and result.rows[tables.LABELS.name] > 300
    for table in (tables.ACTIVITY, tables.LIFETIME_STATE, tables.FEATURES, tables.LABELS,
                  *[tables.entity_checkpoints(t) for t in entities.ENTITIES]):
        daily, loaded = table.uri(settings), table.uri(copy)
        if not delta_io.is_delta(spark, daily):
            assert not delta_io.is_delta(spark, loaded), table.qualified
            continue
        assert delta_io.content_checksum(delta_io.read(spark, loaded)) == \
            delta_io.content_checksum(delta_io.read(spark, daily)), table.qualified


def test_windows_and_recency_match_silver_for_one_customer(spark, gold_lake):
    settings, dates, _, _ = gold_lake
    day = dates[-1]
    snap = _partition(spark, settings, tables.FEATURES, "snapshot_date", day)
    row = snap.orderBy(F.col("sessions_7d").desc(), "customer_id").first()
    web = delta_io.read(spark, tables.silver("web_events").uri(settings)).where(
        (F.col("customer_id") == row["customer_id"]) & (F.to_date("ts") <= F.lit(day)))
    assert row["sessions_7d"] == web.select("session_id").distinct().count()  # 5 days < 7-day window
    last_login = web.where(F.col("event_type") == "login").agg(F.max(F.to_date("ts"))).first()[0]
    assert row["days_since_last_login"] == (day - last_login).days
    paid = delta_io.read(spark, tables.silver("transactions").uri(settings)).where(
        (F.col("customer_id") == row["customer_id"]) & (F.col("status") == "paid")).agg(F.sum("amount")).first()[0]
    assert row["total_spend"] == pytest.approx(paid or 0.0)


def test_labels_match_the_simulated_cancellations(spark, gold_lake):
    settings, dates, _, out = gold_lake
    lab = delta_io.read(spark, tables.LABELS.uri(settings))
    assert sorted(r[0] for r in lab.select("snapshot_date").distinct().collect()) == dates[:3]
    truth = {r["customer_id"]: dt.date.fromisoformat(r["churn_date"])
             for r in csv.DictReader((out / "ground_truth" / "churn.csv").open())}
    faulty = {json.loads(line)["key"].split("@")[0] for line in (out / "ground_truth" / "faults.jsonl").open()
              if json.loads(line)["source"].startswith("crm.subscriptions")}
    checked = mismatched = 0
    for r in lab.collect():
        expected = int(r["customer_id"] in truth and r["snapshot_date"] < truth[r["customer_id"]]
                       <= r["snapshot_date"] + dt.timedelta(days=HORIZON))
        checked += 1
        if r["churned"] != expected:
            mismatched += 1
            assert r["customer_id"] in faulty, (r, truth.get(r["customer_id"]))
        assert r["labelled_on"] == r["snapshot_date"] + dt.timedelta(days=HORIZON)
    assert checked > 400 and lab.where("churned = 1").count() >= 1
    # customers gone on the snapshot date have no snapshot and so no label
    gone = {c for c, d in truth.items() if d <= dates[0]}
    assert not gone & {r[0] for r in lab.where(F.col("snapshot_date") == F.lit(dates[0])).select("customer_id").collect()}


def test_rerunning_gold_for_a_date_leaves_identical_tables(spark, gold_lake):
    settings, dates, _, _ = gold_lake
    names = [tables.ACTIVITY, tables.LIFETIME_STATE, tables.FEATURES, tables.LABELS,
             *[tables.entity_checkpoints(t) for t in entities.ENTITIES]]
    # the month's checkpoint of each entity was written on its first day and served the later dates
    checkpoints = delta_io.read(spark, tables.entity_checkpoints("subscriptions").uri(settings))
    assert [r[0] for r in checkpoints.select("checkpoint_date").distinct().collect()] == [dates[0].replace(day=1)]
    before = {t.name: delta_io.content_checksum(delta_io.read(spark, t.uri(settings))) for t in names}
    build_gold(spark, settings, dates[3])
    after = {t.name: delta_io.content_checksum(delta_io.read(spark, t.uri(settings))) for t in names}
    assert before == after


def test_gold_tables_are_registered_with_comments_and_constraints(spark, gold_lake):
    settings, dates, _, _ = gold_lake
    catalog.register(spark, settings)
    desc = {r["col_name"]: r["comment"] for r in spark.sql("DESCRIBE TABLE gold.customer_daily_features").collect()}
    assert desc["session_trend_30d"].startswith("(sessions_30d + 1)")
    props = {r["key"]: r["value"] for r in spark.sql("SHOW TBLPROPERTIES gold.churn_labels").collect()}
    assert "churnedIN(0,1)" in props["delta.constraints.labels_binary"].replace(" ", "")
    assert spark.table("gold.customer_daily_features").where(F.col("snapshot_date") == F.lit(dates[0])).count() > 150
    bad = spark.table("gold.churn_labels").limit(1).withColumn("churned", F.lit(7))
    with pytest.raises(Exception, match="labels_binary"):
        bad.write.format("delta").mode("append").save(tables.LABELS.uri(settings))
    nulls = spark.table("gold.customer_daily_features").limit(1).withColumn("tenure_days", F.lit(None).cast("int"))
    with pytest.raises(Exception, match="(?i)null"):
        nulls.write.format("delta").mode("append").save(tables.FEATURES.uri(settings))


def test_sample_queries_run_by_table_name(spark, gold_lake):
    settings, dates, _, _ = gold_lake
    results = {name: df.collect() for name, df in catalog.run_queries(spark, settings,
                                                                      catalog.SQL_DIR / "sample_queries.sql")}
    assert set(results) == {"top_at_risk_customers", "churn_rate_by_plan_per_month", "feature_distributions",
                            "daily_active_customers"}
    assert [r["snapshot_date"] for r in results["daily_active_customers"]] == dates
    plans = {r["plan"] for r in results["churn_rate_by_plan_per_month"]}
    assert plans <= {"basic", "standard", "premium"} and plans
    assert sum(r["customer_days"] for r in results["churn_rate_by_plan_per_month"]) == \
        spark.table("gold.churn_labels").count()
    assert {r["feature"] for r in results["feature_distributions"]} == {"sessions_30d", "spend_30d", "tenure_days"}


def test_online_store_serves_the_latest_snapshot(spark, gold_lake):
    from lakehouse.featurestore.store import OnlineStore

    settings, dates, _, _ = gold_lake
    snap = _partition(spark, settings, tables.FEATURES, "snapshot_date", dates[-1]).orderBy("customer_id").limit(3)
    expected = {r["customer_id"]: r for r in snap.collect()}
    store = OnlineStore(settings)
    got = store.get(list(expected) + ["C9999999"], ["sessions_7d", "plan", "session_trend_7d"])
    for row in got[:3]:
        e = expected[row["customer_id"]]
        assert (row["sessions_7d"], row["plan"], row["_as_of"]) == (e["sessions_7d"], e["plan"], dates[-1].isoformat())
        # the registry's newest session_trend_7d is v2: share of 30-day sessions in the last 7
        assert row["session_trend_7d"] == pytest.approx(e["sessions_7d"] / e["sessions_30d"] if e["sessions_30d"] else 0)
    assert got[3] == {"customer_id": "C9999999", "_missing": True}
    assert [m["run_date"] for m in store.materializations()] == [d.isoformat() for d in dates]
    store.close()


def test_eda_artifacts_and_the_notebook_run_on_the_gold_tables(spark, gold_lake, tmp_path):
    import os

    import nbformat
    from nbclient import NotebookClient

    from lakehouse.config import PROJECT_ROOT
    from lakehouse.eda import run_eda

    settings, dates, _, _ = gold_lake
    result = run_eda(spark, settings, dates[-1], tmp_path / "eda")
    for name in ("summary_statistics.csv", "histograms.png", "boxplots.png", "correlation.png",
                 "churn_by_segment.png", "trends.png", "report.html"):
        assert (tmp_path / "eda" / name).stat().st_size > 500, name
    assert result["customers"] > 200 and result["days"] == len(dates)
    assert set(result["segments"]) == {"plan", "tenure_band", "region", "channel", "contract"}
    assert "<img src='trends.png'" in (tmp_path / "eda" / "report.html").read_text()

    nb = nbformat.read(PROJECT_ROOT / "notebooks" / "eda.ipynb", as_version=4)
    env = {"LAKEHOUSE_ENV": "test", "LAKEHOUSE__LAKE__ROOT": settings.lake.root,
           "LAKEHOUSE__LOGS_DIR": str(tmp_path / "logs"), "EDA_OUT": str(tmp_path / "nb"),
           "EDA_DATE": dates[-1].isoformat()}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"as of {dates[-1]}" in outputs and "churned" in outputs
    assert (tmp_path / "nb" / "trends.png").exists()


def test_a_bad_run_is_found_in_history_diffed_and_rolled_back(spark, gold_lake):
    from lakehouse import versioning

    settings, dates, _, _ = gold_lake
    uri = tables.FEATURES.uri(settings)
    good_version = delta_io.latest_version(spark, uri)
    good = delta_io.content_checksum(delta_io.read(spark, uri))
    # a bad run: the snapshot of the last date rewritten with every customer's sessions zeroed
    bad = _partition(spark, settings, tables.FEATURES, "snapshot_date", dates[-1]).withColumn("sessions_30d", F.lit(0))
    delta_io.replace_partition(bad.cache(), uri, "snapshot_date", dates[-1].isoformat(),
                               delta_io.commit_metadata("bad-run-1", "gold", dates[-1].isoformat()))
    hist = versioning.history(spark, settings, tables.FEATURES.qualified, limit=3)
    assert hist[0]["run_id"] == "bad-run-1" and hist[0]["version"] == good_version + 1
    changed = versioning.diff(spark, settings, tables.FEATURES.qualified, good_version, good_version + 1,
                              key=["customer_id", "snapshot_date"])
    active = _partition(spark, settings, tables.FEATURES, "snapshot_date", dates[-1])
    assert changed["added"] == 0 and changed["removed"] == 0
    assert changed["changed"] == delta_io.read(spark, uri, good_version).where(
        (F.col("snapshot_date") == F.lit(dates[-1])) & (F.col("sessions_30d") > 0)).count() > 0
    assert active.where("sessions_30d > 0").count() == 0

    result = versioning.restore(spark, settings, tables.FEATURES.qualified, good_version)
    assert result["new_version"] == good_version + 2
    assert delta_io.content_checksum(delta_io.read(spark, uri)) == good
    assert versioning.history(spark, settings, tables.FEATURES.qualified, limit=1)[0]["operation"] == "RESTORE"
    dry = versioning.vacuum(spark, settings, tables.FEATURES.qualified)
    assert dry["retain_hours"] == settings.retention.deleted_file_retention_hours and dry["would_delete_files"] == 0


def test_erasure_removes_a_customer_from_every_layer_version_and_the_online_store(spark, gold_lake, tmp_path):
    """On a copy of this module's lake (raw, bronze, silver, gold, ops, online store): erase the most
    active customer, then look for the id everywhere: every file's bytes, every Parquet value (data
    files referenced or not, checkpoints), every readable table version, the raw zone, SQLite."""
    import hashlib
    import sqlite3
    from pathlib import Path

    from lakehouse.erasure import erase_customer, find_traces

    settings, dates, _, _ = gold_lake
    copy = copy_lake(settings, tmp_path)
    online = copy.path(copy.feature_store.online_path)
    web_uri = tables.silver("web_events").uri(copy)
    web = delta_io.read(spark, web_uri)
    cid = web.groupBy("customer_id").count().orderBy(F.col("count").desc(), "customer_id").first()["customer_id"]
    others_before = delta_io.content_checksum(web.where(F.col("customer_id") != cid))
    before = find_traces(copy, cid)
    places = {p.split("/lake/", 1)[-1].split("/")[0] for p in before}
    assert {"raw", "bronze", "silver", "gold"} <= places and str(online) in before

    result = erase_customer(spark, copy, cid, dt.date(2026, 11, 26))

    assert find_traces(copy, cid) == []
    assert result.online_rows == 1 and result.raw_files and result.data_files_deleted > 0
    assert {"bronze/web_events", "silver/web_events", "silver/customers", "gold/customer_daily_features"} <= set(result.tables)
    from lakehouse.versioning import lake_tables
    for layer, name in lake_tables(spark, copy):
        rel, uri = f"{layer}/{name}", tables.Table(layer, name).uri(copy)
        if rel in result.tables:  # history purged: the only readable version is the erased one
            versions = [r[0] for r in spark.sql(f"DESCRIBE HISTORY delta.`{uri}`").select("version").collect()]
            assert versions == [delta_io.latest_version(spark, uri)], rel
            with pytest.raises(Exception):
                delta_io.read(spark, uri, versions[0] - 1).count()
        df = delta_io.read(spark, uri)
        if "customer_id" in df.columns:
            assert df.where(F.col("customer_id") == cid).count() == 0, rel
    # nobody else was touched, and the raw manifests describe the rewritten bytes
    assert delta_io.content_checksum(delta_io.read(spark, web_uri)) == others_before
    for name in result.raw_files:
        part, file = name.rsplit("/", 1)
        manifest = json.loads((tmp_path / "lake" / part / "_manifest.json").read_text())
        entry = next(f for f in manifest["files"] if f["name"] == file)
        assert entry["sha256"] == hashlib.sha256((tmp_path / "lake" / name).read_bytes()).hexdigest()
        assert manifest["erasures"][-1]["erasure_id"] == result.erasure_id
    with sqlite3.connect(online) as con:
        assert con.execute("SELECT COUNT(*) FROM customer_daily WHERE customer_id = ?", (cid,)).fetchone()[0] == 0
        assert con.execute("SELECT COUNT(*) FROM customer_daily").fetchone()[0] > 100
    record = delta_io.read(spark, tables.ERASURES.uri(copy)).collect()
    assert len(record) == 1 and record[0]["erasure_id"] == result.erasure_id and cid not in str(record[0])
    # the pipeline still runs on the erased lake: gold for the last date rebuilds without the customer (and
    # rebuilds the month's checkpoints: the erasure rewrote the history files they were built from)
    rebuilt = build_gold(spark, copy, dates[-1])
    assert {f"{t}@{dates[0].replace(day=1)}" for t in ("customers", "subscriptions")} <= set(rebuilt.rows)
    snap = _partition(spark, copy, tables.FEATURES, "snapshot_date", dates[-1])
    assert snap.count() > 100 and snap.where(F.col("customer_id") == cid).count() == 0
    assert Path(copy.path(copy.lake.root)).exists()


def test_entity_states_from_monthly_checkpoints_equal_the_whole_history(spark, tmp_path, caplog):
    """A customers history with a late version (arrived after the checkpoint, stamped before it) and two
    stamped ahead of their arrival: each state as of D (as known on K) read from the checkpoint of D's month
    equals the one read from all history, also once the old history files are gone from the disk (so they
    were not read), and a checkpoint whose history files were rewritten is not used until rebuilt."""
    import shutil

    settings = make_settings(tmp_path, gold={"entity_checkpoint_min_mb": 0})
    ts, d = (lambda s: dt.datetime.fromisoformat(s)), dt.date.fromisoformat
    rows = [("A", "DE", ts("2026-01-01 10:00"), d("2026-01-01")), ("A", "FR", ts("2026-02-10 09:00"), d("2026-02-10")),
            ("B", "ES", ts("2026-01-15 08:00"), d("2026-01-15")),
            ("B", "NL", ts("2026-01-31 23:00"), d("2026-02-03")),   # late: arrived after Feb 1, stamped before
            ("C", "US", ts("2026-02-05 12:00"), d("2026-01-20")),   # stamped ahead of its arrival
            ("D", "CA", ts("2026-02-20 07:00"), d("2026-02-20")),
            ("E", "GB", ts("2026-03-02 06:00"), d("2026-02-25"))]   # ahead, into the next month
    history_uri = tables.silver_history("customers").uri(settings)
    (spark.createDataFrame(rows, "customer_id string, country string, updated_at timestamp, _ingest_date date")
     .write.format("delta").partitionBy("_ingest_date").save(history_uri))
    cases = [(d("2026-01-20"), d("2026-01-20")), (d("2026-02-01"), d("2026-02-01")), (d("2026-02-02"), d("2026-03-03")),
             (d("2026-02-04"), d("2026-02-04")), (d("2026-02-10"), d("2026-02-28")), (d("2026-02-28"), d("2026-02-28")),
             (d("2026-03-03"), d("2026-03-03"))]

    def states(which=cases):
        return {c: sorted(tuple(r) for r in entity_store.read_state_as_of(spark, settings, "customers", *c).collect())
                for c in which}

    small = make_settings(tmp_path, gold={"entity_checkpoint_min_mb": 1})  # the history is ~3 KiB
    assert entity_store.write_checkpoints(spark, small, [c[0] for c in cases], "{}", entities=("customers",)) == {}
    whole = states()  # no checkpoint stored yet: every read takes the whole history
    assert [r[1] for r in whole[(d("2026-02-02"), d("2026-03-03"))]] == ["DE", "NL"]  # the late version counts
    assert [r[0] for r in whole[(d("2026-02-04"), d("2026-02-04"))]] == ["A", "B"]    # C not yet, by its stamp
    assert [r[1] for r in whole[(d("2026-02-28"), d("2026-02-28"))]] == ["FR", "NL", "US", "CA"]  # E: March
    written = entity_store.write_checkpoints(spark, settings, [c[0] for c in cases], "{}", entities=("customers",))
    assert written == {"customers@2026-01-01": 1, "customers@2026-02-01": 2, "customers@2026-03-01": 4}
    assert entity_store.write_checkpoints(spark, settings, [d("2026-02-10")], "{}", entities=("customers",)) == {}
    assert states() == whole

    # February's states never open January's files once February's checkpoint holds them (C's file,
    # stamped into February, is still read: it is not moved)
    lake = settings.path(settings.lake.root)
    moved = tmp_path / "moved"
    for day in ("2026-01-01", "2026-01-15"):
        shutil.move(lake / "silver" / "customers_history" / f"_ingest_date={day}", moved / day)
    february = [c for c in cases if c[0].month == 2]
    assert states(february) == {c: whole[c] for c in february}
    for day in ("2026-01-01", "2026-01-15"):
        shutil.move(moved / day, lake / "silver" / "customers_history" / f"_ingest_date={day}")

    # a re-run rewrites January 15 (same rows, new file): the checkpoints from February on no longer fit
    again = delta_io.read(spark, history_uri).where("_ingest_date = '2026-01-15'").cache()
    again.count()
    delta_io.replace_partition(again, history_uri, "_ingest_date", "2026-01-15", "{}")
    again.unpersist()
    with caplog.at_level("WARNING", logger="lakehouse.gold.entity_store"):
        assert states() == whole
    assert "customers_state_checkpoints 2026-02-01 no longer matches silver.customers_history" in caplog.text
    assert entity_store.write_checkpoints(spark, settings, [c[0] for c in cases], "{}", entities=("customers",)) == {
        "customers@2026-02-01": 2, "customers@2026-03-01": 4}
    stored = delta_io.read(spark, tables.entity_checkpoints("customers").uri(settings))
    assert sorted(r[0] for r in stored.groupBy("checkpoint_date").count().select("count").collect()) == [1, 2, 4]
    assert states() == whole


def test_every_table_of_the_lake_is_partitioned_as_the_catalog_declares(spark, gold_lake):
    from delta.tables import DeltaTable

    from lakehouse.versioning import lake_tables

    settings = gold_lake[0]
    found = lake_tables(spark, settings)
    assert {"bronze", "silver", "gold", "ops"} <= {layer for layer, _ in found}
    for layer, name in found:
        table = tables.parse(f"{layer}.{name}")
        detail = DeltaTable.forPath(spark, table.uri(settings)).detail().first()
        assert tuple(detail["partitionColumns"]) == table.partition_by, table.qualified

