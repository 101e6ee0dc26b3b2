"""Register the lake's tables by name (``gold.customer_daily_features``...) from the DDL files.

The DDL in ``lakehouse/sql/*_ddl.sql`` is the schema of record. Running it is idempotent: CREATE
TABLE IF NOT EXISTS with a LOCATION creates the Delta table the first time and afterwards only
registers the name in the session catalog; an ADD CONSTRAINT whose name is already on the table is
skipped. Spark's built-in catalog lives in the session, so every job and notebook registers at start
(a few hundred milliseconds); a shared deployment would point Spark at a Hive metastore or Unity
Catalog instead and run the DDL once.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

log = logging.getLogger(__name__)
SQL_DIR = Path(__file__).parent / "sql"
_CONSTRAINT = re.compile(r"ALTER\s+TABLE\s+(\S+)\s+ADD\s+CONSTRAINT\s+(\w+)", re.I)


def statements(text: str) -> list[tuple[str | None, str]]:
    """(name, statement) pairs of a SQL file; ``-- name: x`` above a statement names it."""
    out, name, buf = [], None, []
    for line in text.splitlines():
        m = re.match(r"\s*--\s*name:\s*(\S+)", line)
        if m:
            name = m.group(1)
            continue
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            if stmt:
                out.append((name, stmt))
            name, buf = None, []
    if "\n".join(buf).strip():
        out.append((name, "\n".join(buf).strip()))
    return out


def _substitute(text: str, settings: Settings) -> str:
    return text.replace("${lake}", settings.lake_uri)


_CREATE = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\S+).*?LOCATION\s+'([^']+)'", re.I | re.S)


def _norm(location: str) -> str:
    return re.sub(r"^file:/+", "/", location).rstrip("/")


def _forget_if_moved(spark: SparkSession, stmt: str) -> None:
    """A name registered for another lake location (another lake in the same session): unregister it.

    Only the catalog entry goes; the tables are external (LOCATION), so DROP TABLE keeps their data.
    """
    m = _CREATE.match(stmt)
    if not m or not spark.catalog.tableExists(m.group(1)):
        return
    name, wanted = m.group(1), m.group(2)
    try:
        location = spark.sql(f"DESCRIBE DETAIL {name}").first()["location"]
    except AnalysisException as exc:
        if exc.getErrorClass() != "DELTA_PATH_DOES_NOT_EXIST":
            raise
        location = "a folder deleted since"  # (a lake deleted while the session ran: a benchmark's scratch lake)
    if _norm(location) != _norm(wanted):
        table = spark.catalog.getTable(name)
        if (table.tableType or "").upper() != "EXTERNAL":
            raise LakehouseError(f"{name} is registered as a managed table at {location}; expected "
                                 f"external at {wanted}")
        log.info("catalog: %s moves from %s to %s", name, location, wanted)
        spark.sql(f"DROP TABLE {name}")


def register(spark: SparkSession, settings: Settings, files: list[Path] | None = None) -> list[str]:
    """Run the DDL files against the lake; returns the tables now known by name."""
    files = files or sorted(SQL_DIR.glob("*_ddl.sql"))
    registered = []
    for path in files:
        for _, stmt in statements(_substitute(path.read_text(), settings)):
            m = _CONSTRAINT.match(stmt)
            _forget_if_moved(spark, stmt)
            try:
                if m:
                    props = {r["key"] for r in spark.sql(f"SHOW TBLPROPERTIES {m.group(1)}").collect()}
                    if f"delta.constraints.{m.group(2).lower()}" in props:
                        continue
                spark.sql(stmt)
            except Exception as exc:  # noqa: BLE001 - name the statement and file, keep Spark's reason
                first = stmt.splitlines()[0]
                raise LakehouseError(f"{path.name}: statement '{first}' failed: {str(exc).splitlines()[0]}") from exc
            t = re.match(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\S+)", stmt, re.I)
            if t:
                registered.append(t.group(1))
    log.info("catalog: %d table(s) registered from %s", len(registered), ", ".join(p.name for p in files))
    return registered


def run_queries(spark: SparkSession, settings: Settings, path: Path) -> list[tuple[str, DataFrame]]:
    """Each named query of a SQL file as a DataFrame (lazy; the caller shows or collects it)."""
    return [(name or f"query_{i + 1}", spark.sql(stmt))
            for i, (name, stmt) in enumerate(statements(_substitute(path.read_text(), settings)))]
