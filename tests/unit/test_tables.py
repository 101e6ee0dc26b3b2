"""The table catalog (lakehouse/tables.py): locations, families, and the DDL's agreement with it."""

import re

import pytest

from lakehouse import catalog, tables
from lakehouse.config import load_settings


def test_every_table_lives_at_its_layer_and_name_under_the_lake():
    settings = load_settings("test", overrides={"lake": {"root": "/data/lake"}})
    assert tables.FEATURES.uri(settings) == "file:///data/lake/gold/customer_daily_features"
    assert tables.FEATURES.qualified == "gold.customer_daily_features" and tables.FEATURES.partition == "snapshot_date"
    assert tables.bronze(tables.bronze_table("support_api", "nps")).rel == "bronze/support_nps"
    assert tables.silver_history("customers").rel == "silver/customers_history"
    assert tables.quarantine("web").rel == "silver/quarantine_web"
    assert tables.entity_checkpoints("subscriptions").partition_by == ("checkpoint_date", "_covers")
    assert tables.deequ_metrics_path(settings, "customers") == "file:///data/lake/ops/deequ_metrics/customers.json"


def test_a_name_outside_the_layers_is_refused_and_parse_finds_declared_entries():
    with pytest.raises(ValueError, match="layer must be one of"):
        tables.Table("platinum", "x")
    with pytest.raises(ValueError, match="not partitioned"):
        _ = tables.ANALYSIS.partition
    assert tables.parse("gold.churn_scores") is tables.SCORES
    assert tables.parse("silver.customers") == tables.silver("customers")
    with pytest.raises(ValueError, match=r"<layer>.<name>"):
        tables.parse("customers")


def test_the_ddl_places_and_partitions_every_gold_table_as_the_catalog_does():
    settings = load_settings("test", overrides={"lake": {"root": "/data/lake"}})
    created = {}
    for path in sorted(catalog.SQL_DIR.glob("*_ddl.sql")):
        for _, stmt in catalog.statements(path.read_text().replace("${lake}", settings.lake_uri)):
            m = re.match(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\S+).*?LOCATION\s+'([^']+)'", stmt, re.I | re.S)
            if m:
                parts = re.search(r"PARTITIONED\s+BY\s*\(([^)]*)\)", stmt, re.I)
                created[m.group(1)] = (m.group(2), tuple(c.strip() for c in parts.group(1).split(",")) if parts else ())
    assert created, "no CREATE TABLE in the DDL files"
    for name, (location, partition_by) in created.items():
        assert location == tables.parse(name).uri(settings), name
        assert partition_by == tables.parse(name).partition_by, name
    assert set(created) == {t.qualified for t in tables.GOLD}
