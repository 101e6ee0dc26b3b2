"""The feature benchmark's routes agree (lakehouse/bench_features.py), at a size a test can afford.

100 days of history, so every window (7, 30 and 90 days) has a day leaving it on the incremental
route; the bench itself compares each route's output with DuckDB's, customer by customer.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lakehouse.bench_features import FEATURES, _check_equal, _load, bench_features


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
