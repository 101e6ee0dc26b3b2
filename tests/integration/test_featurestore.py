"""Feature store: point-in-time retrieval against a hand-computed example, versions and the registry lock."""

import datetime as dt
import json

import pytest
import yaml

from lakehouse.errors import ConfigError
from lakehouse.featurestore.registry import load_registry, write_lock
from lakehouse.featurestore.store import get_historical_features
from lakehouse.tables import Table
from tests.conftest import make_settings

D = dt.date


def _registry(tmp_path, expression="x * 2"):
    doc = {
        "entity": {"name": "customer", "key": "customer_id"},
        "feature_views": {"toy": {
            "source": {"layer": "gold", "table": "toy_view"}, "timestamp": "event_date", "created": "created_at",
            "ttl_days": 3, "owner": "tests",
            "features": [
                {"name": "x", "dtype": "int", "description": "raw value"},
                {"name": "x2", "dtype": "int", "version": 1, "description": "doubled", "expression": expression},
                {"name": "x2", "dtype": "int", "version": 2, "description": "doubled plus one",
                 "expression": "x * 2 + 1"},
            ]}},
    }
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def toy(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fs")
    settings = make_settings(tmp)
    rows = [  # customer, event date, when the row became known, value
        ("A", D(2026, 1, 1), "2026-01-01 23:00:00", 10),
        ("A", D(2026, 1, 3), "2026-01-06 09:00:00", 30),   # late: arrived three days after its date
        ("A", D(2026, 1, 4), "2026-01-04 23:00:00", 40),
        ("B", D(2026, 1, 1), "2026-01-01 23:00:00", 5),
    ]
    df = spark.createDataFrame(rows, "customer_id string, event_date date, created_at string, x int") \
        .selectExpr("customer_id", "event_date", "CAST(created_at AS TIMESTAMP) AS created_at", "x")
    df.write.format("delta").save(Table("gold", "toy_view").uri(settings))
    return settings, load_registry(_registry(tmp))


def test_point_in_time_retrieval_matches_the_hand_computed_example(spark, toy):
    settings, registry = toy
    cases = [  # (customer, as_of) -> x, worked out by hand with a TTL of 3 days
        ("A", D(2026, 1, 2), 10),    # the Jan 1 row, 1 day old
        ("A", D(2026, 1, 3), 10),    # the Jan 3 row exists but nobody knew it until Jan 6
        ("A", D(2026, 1, 4), 40),    # the Jan 4 row, known at 23:00 that day
        ("A", D(2026, 1, 6), 40),    # the late Jan 3 row is known now, but Jan 4 is newer
        ("A", D(2026, 1, 7), None),  # Jan 4 is 3 days old: expired
        ("B", D(2026, 1, 3), 5),     # 2 days old
        ("B", D(2026, 1, 4), None),  # 3 days old: expired
        ("C", D(2026, 1, 4), None),  # never seen
        ("A", D(2025, 12, 31), None),  # before any data
    ]
    entity = spark.createDataFrame([(c, d, i) for i, (c, d, _) in enumerate(cases)],
                                   "customer_id string, as_of date, case int")
    frame, info = get_historical_features(spark, settings, entity, ["x", "toy:x2@v1", "x2"], registry=registry)
    got = {r["case"]: r for r in frame.collect()}
    assert len(got) == len(cases)
    for i, (_, _, want) in enumerate(cases):
        assert got[i]["x"] == want, cases[i]
        assert got[i]["x2__v1"] == (None if want is None else want * 2)
        assert got[i]["x2"] == (None if want is None else want * 2 + 1)  # newest version by default
    assert info.features == ["x@v1", "x2@v1", "x2@v2"]
    assert info.table_versions == {"gold.toy_view": 0}


def test_retrieval_reads_the_pinned_version(spark, toy):
    settings, registry = toy
    uri = Table("gold", "toy_view").uri(settings)
    spark.sql(f"UPDATE delta.`{uri}` SET x = x + 1000 WHERE customer_id = 'B'")
    entity = spark.createDataFrame([("B", D(2026, 1, 2))], "customer_id string, as_of date")
    old, info_old = get_historical_features(spark, settings, entity, ["x"], versions={"gold.toy_view": 0},
                                          registry=registry)
    new, info_new = get_historical_features(spark, settings, entity, ["x"], registry=registry)
    assert (old.first()["x"], new.first()["x"]) == (5, 1005)
    assert (info_old.table_versions, info_new.table_versions) == ({"gold.toy_view": 0}, {"gold.toy_view": 1})


def test_editing_a_locked_definition_in_place_is_refused(tmp_path):
    path = _registry(tmp_path)
    lock, added = write_lock(path)
    assert set(added) == {"toy:x@v1", "toy:x2@v1", "toy:x2@v2"}
    assert json.loads(lock.read_text())["toy:x2@v1"]
    _registry(tmp_path, expression="x * 3")  # same version, new meaning
    with pytest.raises(ConfigError, match="toy:x2@v1 changed its definition"):
        load_registry(path)


def test_the_project_registry_is_valid_and_locked():
    registry = load_registry()
    lock = json.loads((registry_path := __import__("lakehouse.featurestore.registry", fromlist=["REGISTRY"])
                       .REGISTRY).with_suffix(".lock.json").read_text())
    assert set(registry.fingerprints()) == set(lock), f"run `lakehouse features lock` ({registry_path})"
    view, feat = registry.resolve("session_trend_7d")
    assert (view.name, feat.version) == ("customer_daily", 2)
    with pytest.raises(ConfigError, match="unknown feature"):
        registry.resolve("no_such_feature")
