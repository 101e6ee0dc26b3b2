"""The feature benchmark's routes agree (lakehouse/tools/bench_features.py), at a size a test can afford.

100 days of history, so every window (7, 30 and 90 days) has a day leaving it on the incremental
route; the bench itself compares each route's output with DuckDB's, customer by customer.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lakehouse.tools.bench_features import FEATURES, _check_equal, _load, bench_features


def test_every_route_gives_duckdbs_features_and_the_incremental_day_is_a_median_of_three(spark, tmp_path):
    out_json, out_md = tmp_path / "features.json", tmp_path / "features.md"
    results = bench_features([300], [100], out_json, out_md, work=tmp_path / "work", spark=spark)

    assert len(results) == 1 and results[0]["checked_equal"] is True
    steps = {s["engine"]: s for s in results[0]["steps"]}
    assert set(steps) == {"duckdb (full)", "spark (full)", "spark state bootstrap (once, as of D-1)",
                          "spark (incremental day D)", "pandas (full)"}
    customers = steps["duckdb (full)"]["rows_out"]
    assert 250 <= customers <= 300
    for engine in ("spark (full)", "spark (incremental day D)", "pandas (full)"):
        assert steps[engine]["rows_out"] == customers, engine
    runs = steps["spark (incremental day D)"]["runs"]  # idempotent, so run 3 times; the median reported
    assert len(runs) == 3 and steps["spark (incremental day D)"]["seconds"] == sorted(runs)[1]
    assert steps["spark (full)"]["runs"] is None
    assert json.loads(out_json.read_text())["results"][0]["as_of"] == "2025-04-10"
    assert "| 300 | 100 |" in out_md.read_text()
    assert not spark.sparkContext._jsc.sc().isStopped()  # a given session is left running


def test_paired_rounds_run_the_day_on_each_history_and_report_the_median_ratio(spark, tmp_path):
    from lakehouse.tools.bench_features import INTERLEAVED_ROUNDS

    out_json, out_md = tmp_path / "features.json", tmp_path / "features.md"
    results = bench_features([200], [92, 100], out_json, out_md, work=tmp_path / "work", spark=spark)
    # each history's output was removed before the rounds and checked equal to DuckDB's after them,
    # so every history's day really ran (a round bound to the wrong history would leave one missing)
    assert [r["days"] for r in results] == [92, 100]
    for r in results:
        assert len(r["interleaved_s"]) == INTERLEAVED_ROUNDS and all(t > 0 for t in r["interleaved_s"])
    short, long = (r["interleaved_s"] for r in results)
    median = sorted(b / a for a, b in zip(short, long))[INTERLEAVED_ROUNDS // 2]
    row = next(line for line in out_md.read_text().splitlines() if line.startswith("| 200 |") and " d: " in line)
    assert f"| {median:.2f}x |" in row
    assert not (tmp_path / "work" / "c200-d92").exists()  # the data is removed after the rounds


def test_the_equality_check_names_the_column_and_customer_that_differ(tmp_path):
    frame = pd.DataFrame({c: [11, 12, 13] for c in FEATURES})
    frame.to_parquet(tmp_path / "x.parquet")
    expected = _load(tmp_path / "x.parquet")
    got = expected.copy()
    got.loc[1, "spend_90d"] = 99
    with pytest.raises(AssertionError, match="1 customers differ from DuckDB in spend_90d, e.g. customer 12"):
        _check_equal(expected, got, "spark (incremental day D)")
    with pytest.raises(AssertionError, match="2 customers, DuckDB has 3"):
        _check_equal(expected, got.iloc[:2], "spark (full)")


def test_the_validation_benchmark_times_a_scan_a_load_without_checks_and_validation_in_both_sql_modes(
        spark, test_settings, tmp_path):
    """``lakehouse bench validation`` small (300 simulated customers' web events of one date, one
    timed run after a warm-up): every step in both SQL modes, the phases, the Markdown's difference
    table; the shared session's SQL settings are as before."""
    from lakehouse.tools.bench import SQL_MODES, TYPED_LOAD, bench_validation

    keys = {k for conf in SQL_MODES.values() for k in conf}
    before = {k: spark.conf.get(k, None) for k in keys}
    out_json, out_md = tmp_path / "validation.json", tmp_path / "validation.md"
    results = bench_validation(test_settings, [1], out_json, out_md, repeats=1, spark=spark)
    steps = {(r["mode"], r["step"]) for r in results}
    for mode in SQL_MODES:
        assert {(mode, "plain scan"), (mode, TYPED_LOAD), (mode, "validation (Deequ + row rules + dedup)"),
                (mode, "phases")} <= steps
    rows = {r["rows"] for r in results}
    assert len(rows) == 1 and rows.pop() > 1000  # one bronze partition of web events, counted once
    assert all(r["best_s"] > 0 for r in results if r["step"] != "phases")
    phases = [r["phases"] for r in results if r["step"] == "phases"]
    assert len(phases) == 2 and all(set(p) == {"annotate", "cache", "deequ", "latest", "quarantine"}
                                    for p in phases)
    text = out_md.read_text()
    assert "## Validation on top of a load without checks" in text
    section = text.split("## Validation on top")[1].split("\n## ")[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| x1 | ")]
    assert [r[1] for r in rows] == list(SQL_MODES)
    for r in rows:  # validation - typed load, from the medians in the results
        med = {x["step"]: x["median_s"] for x in results if x["mode"] == r[1] and x["step"] != "phases"}
        assert float(r[5]) == round(med["validation (Deequ + row rules + dedup)"] - med[TYPED_LOAD], 2)
    # the date written both ways into tables restored to the first date before each run (a run that
    # inserted nothing raises): one row of the with-writes table, its ratio from the medians
    from lakehouse.tools.bench import LOAD_WRITTEN, SILVER_WRITTEN

    written = {r["step"]: r["median_s"] for r in results if r["step"] in (LOAD_WRITTEN, SILVER_WRITTEN)}
    assert set(written) == {LOAD_WRITTEN, SILVER_WRITTEN} and all(v > 0 for v in written.values())
    section = text.split("## With the writes")[1].split("\n## ")[0]
    row = [line.split(" | ") for line in section.splitlines() if line.startswith("| x1 | ")]
    assert len(row) == 1 and row[0][4] == f"{written[SILVER_WRITTEN] / written[LOAD_WRITTEN]:.2f}x |"
    assert json.loads(out_json.read_text())["results"] == results
    assert {k: spark.conf.get(k, None) for k in keys} == before
    assert not spark.sparkContext._jsc.sc().isStopped()


def test_the_insert_benchmark_inserts_the_same_rows_both_ways_on_each_history(spark, test_settings, tmp_path):
    """``lakehouse bench insert`` at a size a test affords: each history, both lookups (whole table and
    dedup window), the same day's new rows inserted (the 1 % re-delivered found), results written."""
    from lakehouse.tools.bench import INSERT_MODES, bench_insert

    out_json, out_md = tmp_path / "insert.json", tmp_path / "insert.md"
    results = bench_insert(test_settings, [1, 9], out_json, out_md, rows_per_day=2000, repeats=1, spark=spark)
    assert [(r["history_days"], r["mode"]) for r in results] == [(h, m) for h in (1, 9) for m in INSERT_MODES]
    assert {(r["stored_rows"], r["new_rows"], r["inserted"]) for r in results if r["history_days"] == 9} == \
        {(18000, 2020, 2000)}
    assert all(r["inserted"] == 2000 and r["best_s"] > 0 for r in results)
    assert json.loads(out_json.read_text())["results"] == results
    assert "| 9 | 18,000 | dedup window | 2,020 | 2,000 |" in out_md.read_text()
    assert not spark.sparkContext._jsc.sc().isStopped()  # a given session is left running


def test_the_entity_benchmark_reads_the_same_state_from_the_history_and_from_the_checkpoint(spark, test_settings,
                                                                                             tmp_path):
    """``lakehouse bench entities`` small: 2,000 subscriptions, 20 changed a day, lakes of 3 and 40 days
    (the second reads February's checkpoint plus 8 days of changes); the two reads agree (the benchmark
    raises otherwise) and the rows each read takes are counted."""
    from lakehouse.tools.bench import bench_entities

    out_json, out_md = tmp_path / "entities.json", tmp_path / "entities.md"
    results = bench_entities(test_settings, 2000, [3, 40], out_json, out_md, change_rate=0.01, repeats=1, spark=spark)
    reads = {(r["age_days"], r["read"]): (r["history_rows"], r["rows_read"]) for r in results}
    assert reads == {(3, "whole history"): (2040, 2040),
                     (3, "checkpoint of the month (once a month)"): (2040, 2000),
                     (3, "checkpoint + changes since, files listed anew"): (2040, 2040),
                     (3, "checkpoint + changes since"): (2040, 2040),
                     (40, "whole history"): (2780, 2780),
                     (40, "checkpoint of the month (once a month)"): (2780, 2620),  # history up to February 1
                     (40, "checkpoint + changes since, files listed anew"): (2780, 2160),
                     (40, "checkpoint + changes since"): (2780, 2160)}              # 2,000 states + 8 days
    assert all(r["best_s"] > 0 for r in results)
    assert json.loads(out_json.read_text())["results"] == results
    assert all(0 < r["history_mib"] < 1 for r in results)
    assert "| checkpoint + changes since | 2,160 |" in out_md.read_text()


def test_the_training_benchmark_fits_each_algorithm_on_the_feature_stores_training_set(spark, test_settings,
                                                                                      tmp_path):
    """``lakehouse bench train`` small: 300 customers x 4 labelled dates (the last 2 evaluate), two
    algorithms; each is fitted once and cross-validated as training runs it, one candidate at a time
    and two at once, and learns the synthetic mechanism (ROC AUC on the evaluation dates well above
    chance); fitting candidates side by side picks the same model."""
    from lakehouse.tools.bench_train import bench_train

    settings = test_settings.model_copy(update={"model": test_settings.model.model_copy(
        update={"algorithms": ["logistic_regression", "random_forest"]})})
    out_json, out_md = tmp_path / "train.json", tmp_path / "train.md"
    results = bench_train(settings, [300], 4, out_json, out_md, cv_max_rows=600, spark=spark, cv_parallelism=[1, 2])
    folds = settings.model.cv_folds
    assert [(r["step"], r["algorithm"]) for r in results] == [
        ("training set (labels + point-in-time features)", ""),
        ("fit (one candidate)", "logistic_regression"),
        (f"cross-validated ({folds} folds, 1 candidate(s), 1 at a time, best refitted)", "logistic_regression"),
        (f"cross-validated ({folds} folds, 1 candidate(s), 2 at a time, best refitted)", "logistic_regression"),
        ("fit (one candidate)", "random_forest"),
        (f"cross-validated ({folds} folds, 2 candidate(s), 1 at a time, best refitted)", "random_forest"),
        (f"cross-validated ({folds} folds, 2 candidate(s), 2 at a time, best refitted)", "random_forest")]
    for algo in ("logistic_regression", "random_forest"):  # the same folds and candidates: the same model
        one, two = (r for r in results if r["algorithm"] == algo and "cv_parallelism" in r)
        assert (one["cv_parallelism"], two["cv_parallelism"]) == (1, 2)
        assert one["roc_auc"] == two["roc_auc"], algo
    assert {(r["train_rows"], r["eval_rows"], r["features"]) for r in results} == \
        {(600, 600, len(settings.model.features))}
    assert all(r["seconds"] > 0 and r["peak_mib"] > 0 for r in results)
    assert all(r["roc_auc"] > 0.7 for r in results[1:]), [(r["algorithm"], r["roc_auc"]) for r in results]
    assert results[4]["candidate"] == {"maxDepth": settings.model.grid.random_forest["maxDepth"][0]}
    assert json.loads(out_json.read_text())["results"] == results
    assert "| 300 | 600 | 600 | fit (one candidate) | random_forest |" in out_md.read_text()
    assert not spark.sparkContext._jsc.sc().isStopped()  # a given session is left running
