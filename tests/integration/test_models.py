"""Model stage: training with MLflow, champion/challenger, a fresh scoring process, drift, reproducibility.

Runs on synthetic gold tables with a known mechanism (lakehouse/tools/synthetic.py) written through the real
DDL: the real path to gold is covered by test_gold and the DAG test.
"""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.config import PROJECT_ROOT
from lakehouse.ml import tracking
from lakehouse.ml.dataset import build_training_set
from lakehouse.ml.scoring import score_customers
from lakehouse.ml.train import train_models
from lakehouse.tables import Table
from lakehouse.tools import synthetic as synthetic_gold
from tests.conftest import ML_DAYS as DAYS
from tests.conftest import ML_MODEL as MODEL
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def ml(trained_model):
    return trained_model


def test_training_compares_three_algorithms_and_registers_a_champion(ml):
    settings, _, dates, _, first = ml
    assert set(first.metrics) == {"logistic_regression", "random_forest", "gbt"}
    for algo, m in first.metrics.items():
        for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "lift_top_decile", "capture_top_decile",
                    "expected_value", "threshold"):
            assert key in m, (algo, key)
        assert 0.5 < m["roc_auc"] <= 1.0 and 0 < m["pr_auc"] <= 1.0
    best = first.metrics[first.best]
    assert best["roc_auc"] == max(m["roc_auc"] for m in first.metrics.values())
    assert best["roc_auc"] > 0.75  # the synthetic mechanism is strong
    assert best["lift_top_decile"] > 2
    assert first.promoted and first.champion_version == first.registered_version
    # out-of-time: evaluation dates all after training dates
    assert max(first.train_dates) < min(first.eval_dates) and len(first.eval_dates) == 2
    assert first.rows["train_positives"] > 20 and first.rows["eval_positives"] > 5
    for algo in first.metrics:
        assert f"| {algo}" in first.report

    client = tracking.client(settings)
    mv = client.get_model_version_by_alias(settings.model.name, "champion")
    assert str(mv.version) == first.registered_version and float(mv.tags["threshold"]) == pytest.approx(best["threshold"])
    run = client.get_run(first.run_id)
    assert run.data.params["table_version.gold.customer_daily_features"] == str(
        first.table_versions["gold.customer_daily_features"])
    assert run.data.tags["code_version"]
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{first.run_id}'")
    assert {c.data.params["algorithm"] for c in children} == set(first.metrics)
    plots = {a.path for a in client.list_artifacts(children[0].info.run_id, "plots")}
    assert {"plots/roc.png", "plots/pr.png", "plots/calibration.png", "plots/confusion_matrix.png",
            "plots/feature_importance.png"} <= plots
    assert "model_report.md" in {a.path for a in client.list_artifacts(first.run_id)}
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == f"churn-{settings.env}"
    # MLflow staged the Spark model in the lake's scratch folder (not /tmp/mlflow) and removed it after
    staging = Path(tracking.spark_tmpdir(settings).removeprefix("file://"))
    assert staging.is_dir() and list(staging.iterdir()) == []


def test_a_training_set_rebuilt_from_recorded_versions_is_identical(spark, ml):
    settings, _, dates, until, first = ml
    client = tracking.client(settings)
    path = client.download_artifacts(first.run_id, "training_set.json")
    recorded = json.loads(open(path).read())
    original = build_training_set(spark, settings, until, versions=recorded["table_versions"],
                                  dates=[dt.date.fromisoformat(d) for d in recorded["dates"]])
    before = delta_io.content_checksum(original.frame)
    # new data lands: two more labelled snapshots, and a changed value on a training date
    synthetic_gold.write(spark, settings, dates[-1] + dt.timedelta(days=1), 2, customers=700, seed=9)
    uri = Table("gold", "customer_daily_features").uri(settings)
    spark.sql(f"UPDATE delta.`{uri}` SET sessions_7d = sessions_7d + 1 WHERE snapshot_date = '{dates[0]}'")
    rebuilt = build_training_set(spark, settings, until, versions=recorded["table_versions"],
                                 dates=[dt.date.fromisoformat(d) for d in recorded["dates"]])
    assert delta_io.content_checksum(rebuilt.frame) == before
    assert before[0] == DAYS * 700
    fresh = build_training_set(spark, settings, until + dt.timedelta(days=2))
    assert delta_io.content_checksum(fresh.frame) != before  # without pinning, the new data shows


def test_the_champions_training_set_is_rebuilt_equal_to_its_recorded_checksum(spark, ml, tmp_path):
    """Runs after the test above changed the features table and added snapshots: the recorded versions
    still give the recorded rows, in process and through `lakehouse model training-set`."""
    from lakehouse.ml import lineage

    settings, tmp, _, _, first = ml
    client = tracking.client(settings)
    mv = lineage.model_version(client, f"{settings.model.name}@champion", settings.model.name)
    assert str(mv.version) == first.champion_version
    assert mv.tags["training_rows"] == str(DAYS * 700)
    result = lineage.rebuild_training_set(spark, settings, client, mv)
    assert result.equal is True and result.rebuilt == result.recorded
    with open(client.download_artifacts(first.run_id, "lineage.json")) as fh:  # the MLflow run links to it all
        recorded = json.load(fh)
    assert recorded["version"] == str(mv.version) and recorded["tables"] == first.table_versions
    assert recorded["training_checksum"] == mv.tags["training_checksum"] and recorded["snapshot_dates"]
    assert result.rebuilt["rows"] == DAYS * 700 and result.rebuilt["checksum"] == mv.tags["training_checksum"]
    assert result.table_versions == first.table_versions and not result.recorded_now

    env = {**os.environ, "LAKEHOUSE__LAKE__ROOT": settings.lake.root, "LAKEHOUSE__LOGS_DIR": str(tmp / "logs"),
           "LAKEHOUSE__MLFLOW__TRACKING_URI": settings.mlflow.tracking_uri,
           "LAKEHOUSE__MLFLOW__ARTIFACT_ROOT": settings.mlflow.artifact_root}
    proc = subprocess.run([sys.executable, "-m", "lakehouse.cli", "--env", "test", "model", "training-set",
                           f"{settings.model.name}/{mv.version}", "--out", str(tmp_path / "rows")],
                          env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = proc.stdout.splitlines()[0]
    assert line.startswith(f"{settings.model.name} v{mv.version}: training set rebuilt from gold.churn_labels@v")
    assert line.endswith(f": {DAYS * 700} rows, checksum {mv.tags['training_checksum']}: equal to the recorded set")
    assert spark.read.parquet(str(tmp_path / "rows")).count() == DAYS * 700
    bad = subprocess.run([sys.executable, "-m", "lakehouse.cli", "--env", "test", "model", "training-set",
                          f"{settings.model.name}/99"], env=env, capture_output=True, text=True, timeout=600,
                         cwd=PROJECT_ROOT)
    assert bad.returncode == 2 and f"no registered model version '{settings.model.name}/99'" in bad.stderr


def test_retraining_without_a_better_model_keeps_the_champion(spark, ml):
    settings, tmp, _, until, first = ml
    weaker = make_settings(tmp, model={**MODEL, "algorithms": ["logistic_regression"], "champion_margin": 0.05})
    second = train_models(spark, weaker, until, run_id="test-train-2",
                          versions={k: v for k, v in first.table_versions.items()})
    assert not second.promoted
    client = tracking.client(settings)
    assert str(client.get_model_version_by_alias(settings.model.name, "champion").version) == first.registered_version
    assert str(client.get_model_version_by_alias(settings.model.name, "challenger").version) == second.registered_version
    assert second.champion_metric_before == pytest.approx(first.metrics[first.best]["roc_auc"], abs=1e-9)


def _job(script, day, tmp, settings):
    env = {**os.environ, "LAKEHOUSE__LAKE__ROOT": settings.lake.root, "LAKEHOUSE__LOGS_DIR": str(tmp / "logs"),
           "LAKEHOUSE__MLFLOW__TRACKING_URI": settings.mlflow.tracking_uri,
           "LAKEHOUSE__MLFLOW__ARTIFACT_ROOT": settings.mlflow.artifact_root,
           "LAKEHOUSE__FEATURE_STORE__ONLINE_PATH": str(tmp / "online" / "features.sqlite")}
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "jobs" / script), "--run-date", day.isoformat(),
                           "--env", "test"], env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)


def test_a_fresh_process_scores_with_the_champion_idempotently(spark, ml):
    settings, tmp, dates, _, first = ml
    day = dates[-1]
    proc = _job("score.py", day, tmp, settings)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    uri = Table("gold", "churn_scores").uri(settings)
    scores = delta_io.read(spark, uri).where(F.col("score_date") == F.lit(day))
    first_sum = delta_io.content_checksum(scores, exclude=["run_id"])
    rows = scores.collect()
    assert len(rows) == 700
    assert {r["model_version"] for r in rows} == {first.champion_version}
    assert {r["risk_band"] for r in rows} <= {"high", "medium", "low"} and all(0 <= r["probability"] <= 1 for r in rows)
    assert "run ledger" in proc.stdout + proc.stderr
    again = score_customers(spark, settings, day)
    assert again["scored"] == 700
    assert delta_io.content_checksum(delta_io.read(spark, uri).where(F.col("score_date") == F.lit(day)),
                                     exclude=["run_id"]) == first_sum


def test_the_mlflow_ui_serves_the_registered_champion_on_loopback(ml):
    import signal
    import time
    import urllib.request

    from tests.conftest import free_port

    settings, _, _, _, first = ml
    port = free_port()
    env = {**os.environ, "LAKEHOUSE__MLFLOW__TRACKING_URI": settings.mlflow.tracking_uri,
           "LAKEHOUSE__MLFLOW__ARTIFACT_ROOT": settings.mlflow.artifact_root}
    proc = subprocess.Popen([sys.executable, "-m", "lakehouse.cli", "--env", "test", "mlflow", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/registered-models/search"
    try:
        deadline, found = time.monotonic() + 120, None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    found = json.load(response)
            except OSError:
                time.sleep(1)
        assert found is not None, f"no MLflow UI on port {port} (exit {proc.poll()})"
        models = {m["name"]: {a["alias"]: a["version"] for a in m.get("aliases", [])}
                  for m in found["registered_models"]}
        assert models[settings.model.name]["champion"] == first.champion_version
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert output.startswith(f"MLflow UI on http://127.0.0.1:{port} over sqlite:///")


def test_drift_is_flagged_on_a_shifted_scenario_and_not_on_a_steady_one(spark, ml):
    settings, _, dates, _, _ = ml
    steady_day = dates[-1] + dt.timedelta(days=10)
    shifted_day = steady_day + dt.timedelta(days=1)
    synthetic_gold.write(spark, settings, steady_day, 1, customers=700, seed=21, labels=False)
    synthetic_gold.write(spark, settings, shifted_day, 1, customers=700, seed=22, labels=False, shift=1.0)
    steady = score_customers(spark, settings, steady_day)
    shifted = score_customers(spark, settings, shifted_day)
    assert not steady["retrain_flag"] and steady["max_psi"] < settings.model.drift_psi_threshold
    assert shifted["retrain_flag"] and shifted["max_psi"] > settings.model.drift_psi_threshold
    drift = delta_io.read(spark, tables.FEATURE_DRIFT.uri(settings))
    flagged = {r["feature"] for r in drift.where(F.col("score_date") == F.lit(shifted_day)).where("drifted").collect()}
    assert {"sessions_7d", "sessions_30d", "failed_payments_30d"} & flagged


def test_feature_names_match_the_assembled_vector_slot_by_slot(spark):
    """Importance plots and coefficients are labelled by these names: Spark's own slot metadata must agree."""
    from pyspark.ml import Pipeline

    from lakehouse.ml import preprocess

    rows = [(1.0, None, "monthly", "basic"), (2.0, 3.0, "annual", "premium"), (None, 1.0, "monthly", None)]
    frame = spark.createDataFrame(rows, "a double, b double, contract string, plan string")
    model = Pipeline(stages=preprocess.stages(["a", "b"], ["contract", "plan"], scale=False)).fit(frame)
    names = preprocess.feature_names(model.stages, ["a", "b"], ["contract", "plan"])
    attrs = model.transform(frame).schema[preprocess.FEATURES_COL].metadata["ml_attr"]["attrs"]
    slots = sorted((a["idx"], a["name"]) for group in attrs.values() for a in group)
    assert len(names) == len(slots) == 2 + 3 + 4  # contract: annual, monthly, unseen; plan: + __missing__
    # Spark names a slot "<input column>_<value>"; ours are "<feature>=<value>"
    for name, (_, spark_name) in zip(names, slots):
        col, _, value = name.partition("=")
        if value:
            assert spark_name.startswith(f"{col}__ohe_") and spark_name.endswith(
                "__unknown" if value == "<unseen>" else value), (name, spark_name)
        else:
            assert spark_name.endswith(f"_{col}__imp"), (name, spark_name)
    assert names[2:5] == ["contract=annual", "contract=monthly", "contract=<unseen>"]


def test_bins_are_counted_for_every_column_in_one_pass(spark):
    from lakehouse.ml.monitoring import bin_counts

    df = spark.createDataFrame([(1.0, None), (2.0, 5.0), (3.0, 5.0), (None, 7.0)], "a double, b double")
    # (-inf, e0], (e0, e1], ..., (e_last, inf), then nulls
    assert bin_counts(df, {"a": [1.0, 2.5], "b": [5.0]}) == {"a": [1, 1, 1, 1], "b": [2, 1, 1]}
    assert bin_counts(df, {}) == {}


def test_the_grid_comes_from_config_and_a_wrong_parameter_is_named(spark, test_settings):
    from lakehouse.config import ModelGrids
    from lakehouse.errors import LakehouseError
    from lakehouse.ml.train import classifier

    sizes, grid = test_settings.model.sizes, test_settings.model.grid
    clf, candidates = classifier("random_forest", 1, sizes, grid)
    assert [c[clf.getParam("maxDepth")] for c in candidates] == grid.random_forest["maxDepth"]
    # integer, fractional and named values side by side: every combination is a candidate
    mixed = ModelGrids(**{**grid.model_dump(), "random_forest": {"maxDepth": [4], "subsamplingRate": [0.8, 1],
                                                                 "featureSubsetStrategy": ["sqrt", "all"]}})
    clf, candidates = classifier("random_forest", 1, sizes, mixed)
    assert len(candidates) == 4 and {c[clf.getParam("featureSubsetStrategy")] for c in candidates} == {"sqrt", "all"}
    rates = [c[clf.getParam("subsamplingRate")] for c in candidates]
    assert set(rates) == {0.8, 1.0} and {type(r) for r in rates} == {float}  # 1 -> 1.0, as Spark wants it
    bad = ModelGrids(**{**grid.model_dump(), "gbt": {"maxDepth": ["deep"]}})
    with pytest.raises(LakehouseError, match="model.grid.gbt.maxDepth: .*deep"):
        classifier("gbt", 1, sizes, bad)
    bad = ModelGrids(**{**grid.model_dump(), "gbt": {"maxDepht": [3]}})
    with pytest.raises(LakehouseError, match="model.grid.gbt: 'maxDepht' is not a parameter of GBTClassifier"):
        classifier("gbt", 1, sizes, bad)


def test_the_split_for_fitting_has_a_partition_per_core_at_most_and_weights_the_churners(spark):
    from lakehouse.ml.train import weighted_split

    days = [dt.date(2026, 1, d) for d in (1, 2, 3)]
    rows = [(i, days[i % 3], 1 if i % 5 == 0 else 0) for i in range(60)]
    frame = spark.createDataFrame(rows, "id int, as_of date, label int").repartition(8)
    train, evaluation, counts, pos_weight = weighted_split(frame, days[:2], days[2:])
    cores = spark.sparkContext.defaultParallelism
    assert frame.rdd.getNumPartitions() == 8 > cores
    assert train.rdd.getNumPartitions() <= cores and evaluation.rdd.getNumPartitions() <= cores
    assert counts == {"train": 40, "train_positives": 8, "eval": 20, "eval_positives": 4}
    assert pos_weight == 4.0
    assert {(r["label"], r["weight"]) for r in train.collect()} == {(1, 4.0), (0, 1.0)}
    assert sorted(r["id"] for r in evaluation.collect()) == [i for i in range(60) if i % 3 == 2]
    train.unpersist()
    evaluation.unpersist()


def test_vacuum_keeps_the_versions_registered_models_were_trained_on(spark, ml):
    """After a rewrite of the features table, a vacuum with retention zero deletes the
    files no version needs, except those the models' training sets pin, so the champion's training set
    is still rebuilt equal; without the pins the dry run would delete those files too."""
    from lakehouse import versioning
    from lakehouse.ml import lineage

    settings, _, dates, _, first = ml
    uri = Table("gold", "customer_daily_features").uri(settings)  # a rewrite: the files it replaces are garbage
    spark.sql(f"UPDATE delta.`{uri}` SET events_30d = events_30d + 1 WHERE snapshot_date = '{dates[1]}'")
    zero = settings.model_copy(update={"retention": settings.retention.model_copy(
        update={"deleted_file_retention_hours": 0})})
    client = tracking.client(settings)
    pins = lineage.model_pins(settings, client)
    table = "gold.customer_daily_features"
    assert first.table_versions[table] in {p["table_version"] for p in pins[table]}
    later = dt.datetime.now() + dt.timedelta(hours=2)  # the rewrite is then two hours old
    unpinned = versioning.vacuum(spark, zero, table, dry_run=True, now=later)
    pinned = versioning.vacuum(spark, zero, table, dry_run=True, pins=pins[table], now=later)
    assert unpinned["would_delete_files"] > 0 and pinned["retain_hours"] >= 2
    assert pinned["pinned_by"] == [f"{settings.model.name} v{p['version']} -> v{p['table_version']}" for p in pins[table]]
    assert pinned["kept_for_models_files"] == unpinned["would_delete_files"] - pinned["would_delete_files"] > 0
    assert pinned["kept_for_models_bytes"] > 0
    for name, table_pins in pins.items():
        versioning.vacuum(spark, zero, name, dry_run=False, pins=table_pins, now=later)
    mv = lineage.model_version(client, f"{settings.model.name}@champion", settings.model.name)
    result = lineage.rebuild_training_set(spark, settings, client, mv)
    assert result.equal is True and result.rebuilt["checksum"] == mv.tags["training_checksum"]


def _copy_ml_lake(source: Path, dest: Path) -> None:
    """A copy of the trained model's lake and MLflow store whose registry points into the copy (MLflow
    keeps absolute artifact paths in its database)."""
    import shutil
    import sqlite3

    for part in ("lake", "mlflow", "online"):
        if (source / part).exists():
            shutil.copytree(source / part, dest / part)
    with sqlite3.connect(dest / "mlflow" / "mlflow.db") as con:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for col in [r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if "CHAR" in r[2].upper() or
                        "TEXT" in r[2].upper()]:
                con.execute(f'UPDATE "{table}" SET "{col}" = REPLACE("{col}", ?, ?) WHERE "{col}" LIKE ?',
                            (str(source), str(dest), f"%{source}%"))
    con.close()
    _forget_artifact_locations()


def _forget_artifact_locations() -> None:
    """MLflow caches each run's artifact location by run id, process-wide; the copy has the same run ids."""
    from mlflow.tracking._tracking_service import utils

    utils._artifact_repos_cache.clear()


def test_after_an_erasure_the_training_set_is_rebuilt_equal_minus_the_erased_customers_rows(spark, ml, tmp_path,
                                                                                            request):
    """On a copy of the trained lake: the features table is restored to the version training read (the
    tests above changed a training date), a customer of the training set is erased with the older
    versions purged, and the champion's training set, rebuilt from the versions the erasure wrote,
    equals the recorded set without that customer's rows: the count and checksum computed here from the
    rows rebuilt before the erasure, and the command says so. The lineage artifact records the erasure
    without the id."""
    from lakehouse import versioning
    from lakehouse.erasure import erase_customer, find_traces
    from lakehouse.ml import lineage

    settings, tmp, _, _, first = ml
    _copy_ml_lake(tmp, tmp_path)
    request.addfinalizer(_forget_artifact_locations)
    copy = make_settings(tmp_path, model=MODEL)
    client = tracking.client(copy)
    mv = lineage.model_version(client, f"{copy.model.name}@champion", copy.model.name)
    table = "gold.customer_daily_features"
    versioning.restore(spark, copy, table, first.table_versions[table])
    before = lineage.rebuild_training_set(spark, copy, client, mv, out=tmp_path / "before")
    assert before.equal is True and before.erasures == []
    rows = spark.read.parquet(str(tmp_path / "before"))
    cid = rows.groupBy("customer_id").count().orderBy(F.col("count").desc(), "customer_id").first()["customer_id"]
    n = rows.where(F.col("customer_id") == cid).count()
    expected = delta_io.content_checksum(rows.where(F.col("customer_id") != cid))

    result = erase_customer(spark, copy, cid, dt.date(2026, 12, 1))
    assert set(result.versions) >= {"gold/churn_labels", "gold/customer_daily_features"}
    assert all(v["after"] > v["before"] for v in result.versions.values())
    noted = lineage.note_erasure(copy, result.as_dict(), client)
    assert {"model": copy.model.name, "version": str(mv.version), "training_rows_erased": n} in noted
    after = lineage.rebuild_training_set(spark, copy, client, mv)
    assert after.equal is True and after.removed == {"customers": 1, "rows": n} and n > 0
    assert (after.rebuilt["rows"], after.rebuilt["checksum"]) == expected
    assert after.table_versions[table] == result.versions["gold/customer_daily_features"]["after"]
    assert [e["erasure_id"] for e in after.erasures] == [result.erasure_id]
    # the purged versions are gone, and vacuum now pins the versions the erasure wrote
    with pytest.raises(Exception):
        delta_io.read(spark, Table("gold", "customer_daily_features").uri(copy), first.table_versions[table]).count()
    pins = lineage.model_pins(copy, client, lineage.erasure_records(spark, copy))
    assert {p["table_version"] for p in pins[table]} == {after.table_versions[table]}
    with open(client.download_artifacts(first.run_id, "lineage.json")) as fh:
        text = fh.read()
    assert json.loads(text)["erasures"][-1]["erasure_id"] == result.erasure_id and cid not in text
    with open(client.download_artifacts(first.run_id, lineage.CUSTOMER_CHECKSUMS)) as fh:
        assert cid not in fh.read()
    assert find_traces(copy, cid) == []

    env = {**os.environ, "LAKEHOUSE__LAKE__ROOT": copy.lake.root, "LAKEHOUSE__LOGS_DIR": str(tmp_path / "logs"),
           "LAKEHOUSE__MLFLOW__TRACKING_URI": copy.mlflow.tracking_uri,
           "LAKEHOUSE__MLFLOW__ARTIFACT_ROOT": copy.mlflow.artifact_root}
    proc = subprocess.run([sys.executable, "-m", "lakehouse.cli", "--env", "test", "model", "training-set",
                           f"{copy.model.name}@champion"], env=env, capture_output=True, text=True, timeout=600,
                          cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0].endswith(
        f": {expected[0]} rows, checksum {expected[1]}: equal to the recorded set without 1 erased customer, "
        f"{n} rows (1 erasure(s) since training)")


def test_training_rows_beyond_the_cap_are_sampled_keeping_the_class_ratio(spark):
    from lakehouse.ml.train import cap_training_rows

    frame = spark.range(22_000).selectExpr("id", "CAST(id % 11 = 0 AS INT) AS label").cache()
    rows = {"train": 22_000, "train_positives": 2_000}
    assert cap_training_rows(frame, dict(rows), 0, 7) is frame  # 0: no cap
    assert cap_training_rows(frame, dict(rows), 22_000, 7) is frame  # within the cap
    sample = cap_training_rows(frame, rows, 5_500, 7)
    n, positives = sample.count(), sample.where("label = 1").count()
    assert rows["train_sampled"] == n and rows["sample_fraction"] == 0.25
    assert abs(n - 5_500) < 300 and abs(positives / n - 1 / 11) < 0.015  # stratified: the ratio holds
    assert sample.collect() == cap_training_rows(frame.cache(), dict(rows), 5_500, 7).collect()  # seeded
    sample.unpersist()


def test_cross_validation_on_a_sample_fits_the_chosen_candidate_on_every_training_row(spark, tmp_path):
    """``model.max_cv_rows``: candidates are compared on a stratified sample, and the one chosen is fitted on
    all training rows (its scaler's means are those of every row, its coefficients those of a direct fit)."""
    import numpy as np

    from lakehouse.config import ModelGrids, ModelSizes
    from lakehouse.ml import preprocess, tracking
    from lakehouse.ml.train import classifier, cv_sample, fit_algorithms

    settings = make_settings(tmp_path)
    tracking.setup(settings)
    train = spark.range(6_000).selectExpr(
        "CAST(id % 7 = 0 AS INT) AS label", "1.0 AS weight", "IF(id % 7 = 0, 1.5, 0.0) + rand(1) * 2 AS x",
        "id % 13 AS y", "IF(id % 3 = 0, 'a', 'b') AS c").coalesce(2).cache()
    evaluation = spark.range(6_000, 8_000).selectExpr(
        "CAST(id % 7 = 0 AS INT) AS label", "1.0 AS weight", "IF(id % 7 = 0, 1.5, 0.0) + rand(2) * 2 AS x",
        "id % 13 AS y", "IF(id % 3 = 0, 'a', 'b') AS c")
    rows = {"train": 6_000, "train_positives": 858}
    assert cv_sample(train, dict(rows), 0, 7) is None and cv_sample(train, dict(rows), 6_000, 7) is None
    sample = cv_sample(train, rows, 1_500, 7)
    n = sample.count()
    assert rows["cv_sampled"] == n and rows["cv_fraction"] == 0.25 and abs(n - 1_500) < 150
    assert abs(sample.where("label = 1").count() / n - 1 / 7) < 0.03  # stratified
    grids = ModelGrids(logistic_regression={"regParam": [0.001, 0.5]}, random_forest={}, gbt={})
    results, models = fit_algorithms(train, evaluation, ["x", "y"], ["c"], ["logistic_regression"], 2, 7,
                                     settings.model.costs, tmp_path / "plots", ModelSizes(), grids, cv_rows=sample)
    model = models["logistic_regression"]
    scaler = next(s for s in model.stages if hasattr(s, "mean"))
    full_mean = train.selectExpr("avg(x)", "avg(y)").first()
    sample_mean = sample.selectExpr("avg(x)", "avg(y)").first()
    assert np.allclose(scaler.mean.toArray(), list(full_mean), atol=1e-9)
    assert not np.allclose(scaler.mean.toArray(), list(sample_mean), atol=1e-6)  # not the sample's
    clf, grid = classifier("logistic_regression", 7, ModelSizes(), grids)
    chosen = model.stages[-1].getRegParam()
    direct = preprocess.pipeline(["x", "y"], ["c"], clf).fit(train, next(p for p in grid if chosen in p.values()))
    assert np.allclose(model.stages[-1].coefficients.toArray(), direct.stages[-1].coefficients.toArray())
    assert 0.5 < results["logistic_regression"]["roc_auc"] <= 1
    train.unpersist()
    sample.unpersist()
