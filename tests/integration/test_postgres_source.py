"""The CRM simulator on a real PostgreSQL server, read back by Spark over JDBC."""

import sqlite3

import pytest

from tests.conftest import free_port
from tests.servers import PostgresServer, postgres_bin

pytestmark = pytest.mark.skipif(postgres_bin() is None,
                                reason="PostgreSQL server binaries not installed (apt-get install postgresql)")


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer(free_port()).start()
    yield server
    server.stop()


def test_crm_tables_in_postgres_match_sqlite(spark, test_settings, postgres, tmp_path):
    from lakehouse.simulator.systems import generate_sources

    out = tmp_path / "pg-sources"
    generate_sources(test_settings.simulator, out, postgres_url=postgres.url)
    props = {"user": "postgres", "password": postgres.password, "driver": "org.postgresql.Driver"}
    day = test_settings.simulator.start_date.isoformat()
    query = f"(SELECT * FROM customers WHERE updated_at >= '{day}' AND updated_at < '{day}T99') q"
    pg = spark.read.jdbc(postgres.jdbc_url, query, properties=props)
    con = sqlite3.connect(out / "crm" / "crm.db")
    expected = con.execute(
        "SELECT customer_id, email FROM customers WHERE updated_at >= ? AND updated_at < ? ORDER BY 1",
        (day, day + "T99")).fetchall()
    con.close()
    got = sorted((r.customer_id, r.email) for r in pg.select("customer_id", "email").collect())
    assert len(got) > 100
    assert got == expected
