"""``lakehouse erase``: remove one customer from every layer of the lake (right to erasure).

What is removed, for a customer id such as ``C0000042``:

- every row of every Delta table (bronze, silver, gold, ops, BYOD tables) in which any text column
  holds the id as a whole token (``customer_id`` itself, but also event and session ids built from it
  and the verbatim lines kept in quarantine), by rewriting only the affected partitions;
- every line (CSV, JSON Lines) or record (JSON pages) of the raw zone that holds the id; the partition
  is replaced atomically and its manifest gets the new sizes and checksums plus an ``erasures`` entry;
- the customer's row in the online feature store (SQLite), followed by ``VACUUM`` so no free page
  keeps the bytes.

With ``purge`` (the default) the old versions are destroyed at once: every data file the current
version does not reference is deleted (what ``VACUUM ... RETAIN 0 HOURS`` does) on every table that was
rewritten, then a checkpoint is written and the older Delta log files are deleted,
because Delta's commit files (and its ``.crc`` checksum files) carry per-file min/max statistics that
can spell the id out. Time travel on those tables then starts at the erasure. Without ``purge`` the
rows are gone from the current versions and the rest follows the retention policy
(``lakehouse table vacuum`` after ``retention.deleted_file_retention_hours``).

The ``ops/erasures`` record says, per table rewritten, which version the rewrite replaced and which it
wrote; registered models' training sets are rebuilt from the latter, minus the erased customer's rows
(``ml.lineage``; the CLI appends the erasure to the affected models' lineage).

Nothing here writes the clear id anywhere: commits are stamped with the erasure id (a keyed hash of
the customer id with the personal-data key) and so is the ``ops/erasures`` record.
Out of reach of this command: the source systems themselves (delete there first, or a re-ingest of an
old date brings the person back) and copies made outside the lake (see docs/reliability.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import sqlite3
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from lakehouse import delta_io, tables
from lakehouse.config import Settings, secret
from lakehouse.errors import LakehouseError
from lakehouse.storage import Storage, storage_for
from lakehouse.versioning import lake_tables

log = logging.getLogger(__name__)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$")
_DELTA_FILE = re.compile(r"^\.?(\d{20})\.(json|crc|checkpoint\.parquet|checkpoint\.\d+\.\d+\.parquet)(\.crc)?$")


@dataclass
class ErasureResult:
    erasure_id: str
    requested_on: str
    purged: bool
    tables: dict[str, int] = field(default_factory=dict)        # table -> rows removed
    versions: dict[str, dict] = field(default_factory=dict)     # table -> {"before": v, "after": v}
    raw_files: dict[str, int] = field(default_factory=dict)     # raw file -> lines/records removed
    online_rows: int = 0
    data_files_deleted: int = 0
    log_files_deleted: int = 0
    seconds: float = 0.0

    @property
    def rows_removed(self) -> int:
        return sum(self.tables.values())

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_removed": self.rows_removed}


def erasure_id(settings: Settings, customer_id: str) -> str:
    """Keyed hash of the id: lets the record say *which* request without saying *who*."""
    key = secret(settings.quality.pii_key_env, "quality.pii_key_env") or ""
    return hmac.new(key.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:24]


def token_pattern(customer_id: str) -> str:
    """The id as a whole token: ``C0000042`` matches in ``C0000042-20260101-1`` but not in ``C00000421``."""
    return rf"(^|[^A-Za-z0-9]){re.escape(customer_id)}([^A-Za-z0-9]|$)"


def check_customer_id(customer_id: str) -> str:
    cid = (customer_id or "").strip()
    if not _ID_RE.match(cid):
        raise LakehouseError(f"erase: {customer_id!r} does not look like a customer id (3-64 letters, digits, "
                             "'_', '.', ':' or '-'); refusing to match it against every table")
    if not any(ch.isalpha() for ch in cid):
        raise LakehouseError(f"erase: {customer_id!r} has no letter; ids are matched as tokens in every text "
                             "column and raw line, where a bare number would also match amounts and counts")
    return cid


def _erase_from_table(spark: SparkSession, uri: str, pattern: str, metadata: str) -> int:
    from delta.tables import DeltaTable

    df = delta_io.read(spark, uri)
    text_cols = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
    if not text_cols:
        return 0
    hit = F.lit(False)
    for c in text_cols:
        hit = hit | F.coalesce(F.col(c).rlike(pattern), F.lit(False))
    n = df.where(hit).count()
    if n == 0:
        return 0
    parts = DeltaTable.forPath(spark, uri).detail().select("partitionColumns").first()[0] or []
    writer = df.where(~hit).write.format("delta").mode("overwrite").option("userMetadata", metadata)
    if parts:
        touched = df.where(hit).select(*parts).distinct().collect()
        where = " OR ".join("(" + " AND ".join(_equals(p, r[p]) for p in parts) + ")" for r in touched)
        keep = df.where(f"({where})").where(~hit)
        writer = (keep.write.format("delta").mode("overwrite").option("userMetadata", metadata)
                  .option("replaceWhere", where).partitionBy(*parts))
    writer.save(uri)
    left = delta_io.read(spark, uri).where(hit).count()
    if left:
        raise LakehouseError(f"erase: {left} matching rows still in {uri} after the rewrite")
    return n


def _equals(col: str, value) -> str:
    if value is None:
        return f"`{col}` IS NULL"
    text = str(value).replace("'", "''")
    return f"CAST(`{col}` AS STRING) = '{text}'"


def purge_history(spark: SparkSession, storage: Storage, rel: str, uri: str) -> tuple[int, int]:
    """Destroy every version of a table older than the current one: data files, then log files.

    Returns (data files deleted, log files deleted); time travel starts at the current version.
    Like ``VACUUM ... RETAIN 0 HOURS`` this must not run beside a writer of the same table (a file
    written by an uncommitted transaction would be deleted). It does what that VACUUM does with the
    data files, without its table-wide Spark jobs, which took 25-50 s per small table on 2 cores.
    """
    current_files = {urllib.parse.unquote(p.rsplit("/", 1)[-1]) for p in delta_io.read(spark, uri).inputFiles()}
    data_deleted = 0
    for path in _files_under(storage, rel):
        name = path.rsplit("/", 1)[-1]
        bare = name[1:-4] if name.startswith(".") and name.endswith(".crc") else name  # Hadoop checksum sidecar
        if bare.endswith(".parquet") and bare not in current_files:
            storage.delete(path)
            data_deleted += 1
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, uri).checkpoint()
    last = json.loads(storage.read_bytes(f"{rel}/_delta_log/_last_checkpoint"))
    current = int(last["version"])  # readers start from this checkpoint; nothing older is needed
    log_deleted = 0
    for name, is_dir, _ in storage.list_dir(f"{rel}/_delta_log"):
        m = _DELTA_FILE.match(name)
        if not is_dir and m and int(m.group(1)) < current:
            storage.delete(f"{rel}/_delta_log/{name}")
            log_deleted += 1
    return data_deleted, log_deleted


def _files_under(storage: Storage, rel: str):
    """Every file below ``rel`` except the Delta log."""
    for name, is_dir, _ in storage.list_dir(rel):
        if is_dir and name != "_delta_log":
            yield from _files_under(storage, f"{rel}/{name}")
        elif not is_dir:
            yield f"{rel}/{name}"


def _erase_raw(storage: Storage, pattern: str, eid: str, requested_on: str) -> dict[str, int]:
    """Rewrite every raw partition holding the id without it; returns removed lines per file."""
    rx = re.compile(pattern.encode())
    removed: dict[str, int] = {}
    for part in _raw_partitions(storage, "raw"):
        names = [n for n, is_dir, _ in storage.list_dir(part) if not is_dir]
        files = {n: storage.read_bytes(f"{part}/{n}") for n in names}
        hits = {n for n, data in files.items() if n != "_manifest.json" and rx.search(data)}
        if not hits:
            continue
        manifest = json.loads(files["_manifest.json"]) if "_manifest.json" in files else None
        for n in sorted(hits):
            files[n], count = _drop_records(n, files[n], rx)
            removed[f"{part}/{n}"] = count
            if manifest:
                for entry in manifest.get("files", []):
                    if entry.get("name") == n:
                        entry.update(bytes=len(files[n]), sha256=hashlib.sha256(files[n]).hexdigest())
                        if isinstance(entry.get("rows"), int):
                            entry["rows"] -= count
                if isinstance(manifest.get("rows"), int):
                    manifest["rows"] -= count
        if manifest is not None:
            manifest["bytes"] = sum(len(v) for k, v in files.items() if k != "_manifest.json")
            manifest.setdefault("erasures", []).append(
                {"erasure_id": eid, "requested_on": requested_on,
                 "removed": {n: removed[f"{part}/{n}"] for n in sorted(hits)}})
            files["_manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
        storage.replace_dir(part, files, tmp_tag=f"erase-{uuid.uuid4().hex[:8]}")
        if any(rx.search(data) for n, data in files.items() if n != "_manifest.json"):
            raise LakehouseError(f"erase: raw partition {part} still holds the id after the rewrite")
    return removed


def _raw_partitions(storage: Storage, rel: str):
    entries = storage.list_dir(rel)
    if any(not is_dir for _, is_dir, _ in entries):
        yield rel
    for name, is_dir, _ in entries:
        if is_dir and not name.startswith("."):
            yield from _raw_partitions(storage, f"{rel}/{name}")


def _drop_records(name: str, data: bytes, rx: re.Pattern) -> tuple[bytes, int]:
    """Remove the id's records: ``data`` entries of a JSON page, otherwise whole lines."""
    if name.endswith(".json"):
        try:
            page = json.loads(data)
        except ValueError:
            page = None
        if isinstance(page, dict) and isinstance(page.get("data"), list):
            keep = [r for r in page["data"] if not rx.search(json.dumps(r).encode())]
            count = len(page["data"]) - len(keep)
            page["data"] = keep
            out = json.dumps(page).encode()
            if not rx.search(out):
                return out, count
    lines = data.splitlines(keepends=True)
    keep = [ln for ln in lines if not rx.search(ln)]
    return b"".join(keep), len(lines) - len(keep)


def _erase_online(settings: Settings, customer_id: str) -> int:
    path = Path(settings.path(settings.feature_store.online_path))
    if not path.exists():
        return 0
    n = 0
    with sqlite3.connect(path) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')]
            for c in cols:
                n += con.execute(f'DELETE FROM "{t}" WHERE CAST("{c}" AS TEXT) = ?', (customer_id,)).rowcount
    con.close()
    with sqlite3.connect(path, isolation_level=None) as con:  # VACUUM cannot run inside a transaction
        con.execute("VACUUM")
    con.close()
    return n


def erase_customer(spark: SparkSession, settings: Settings, customer_id: str, requested_on: dt.date,
                   purge: bool = True) -> ErasureResult:
    """Remove ``customer_id`` from every table, the raw zone and the online store; see the module doc."""
    cid = check_customer_id(customer_id)
    started = time.perf_counter()
    eid = erasure_id(settings, cid)
    storage = storage_for(settings)
    result = ErasureResult(erasure_id=eid, requested_on=requested_on.isoformat(), purged=purge)
    pattern = token_pattern(cid)
    run_id = f"erase-{eid[:12]}"
    metadata = delta_io.commit_metadata(run_id, "erase", requested_on.isoformat(), erasure_id=eid)
    found = [(f"{layer}/{name}", tables.Table(layer, name).uri(settings)) for layer, name in lake_tables(spark, settings)]
    log.info("erasure %s: scanning %d Delta tables", eid, len(found))
    for i, (rel, uri) in enumerate(found, 1):
        if rel == tables.ERASURES.rel:
            continue
        t = time.perf_counter()
        before = delta_io.latest_version(spark, uri)
        n = _erase_from_table(spark, uri, pattern, metadata)
        if n:
            result.tables[rel] = n
            result.versions[rel] = {"before": before, "after": delta_io.latest_version(spark, uri)}
        log.info("erasure %s: [%d/%d] %s: %d rows removed (%.1fs)", eid, i, len(found), rel, n,
                 time.perf_counter() - t)
    if purge:
        for rel in result.tables:
            t = time.perf_counter()
            data, logs = purge_history(spark, storage, rel, storage.join(rel))
            result.data_files_deleted += data
            result.log_files_deleted += logs
            log.info("erasure %s: %s purged: %d older data files and %d log files deleted (%.1fs)", eid, rel,
                     data, logs, time.perf_counter() - t)
        log.info("erasure %s: older versions of %d tables purged (%d log files deleted)", eid,
                 len(result.tables), result.log_files_deleted)
    result.raw_files = _erase_raw(storage, pattern, eid, requested_on.isoformat())
    log.info("erasure %s: %d raw files rewritten (%d records removed)", eid, len(result.raw_files),
             sum(result.raw_files.values()))
    result.online_rows = _erase_online(settings, cid)
    result.seconds = round(time.perf_counter() - started, 1)
    record = spark.createDataFrame(
        [(eid, requested_on.isoformat(), purge, json.dumps(result.tables, sort_keys=True), result.rows_removed,
          len(result.raw_files), sum(result.raw_files.values()), result.online_rows, run_id,
          json.dumps(result.versions, sort_keys=True))],
        "erasure_id string, requested_on string, purged boolean, tables string, rows_removed long, "
        "raw_files long, raw_records_removed long, online_rows long, run_id string, versions string")
    delta_io.append(record, tables.ERASURES.uri(settings), metadata)
    log.info("erasure %s done in %.1fs: %d rows from %d tables, %d raw records, %d online rows", eid,
             result.seconds, result.rows_removed, len(result.tables), sum(result.raw_files.values()),
             result.online_rows)
    return result


def find_traces(settings: Settings, customer_id: str) -> list[str]:
    """Every place under the lake root and in the online store where the id still appears.

    Reads Parquet files (data and checkpoints, referenced or not) value by value with pyarrow and every
    other file as bytes (Delta commits, checksums, raw files, manifests, reports); SQLite after a VACUUM.
    Local lakes only (a check for tests and for an operator after ``erase``).
    """
    import pyarrow.parquet as pq

    cid = check_customer_id(customer_id)
    rx = re.compile(token_pattern(cid).encode())
    root = Path(urllib.parse.urlparse(settings.lake_uri).path)
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for col in table.column_names:
                if any(v is not None and rx.search(str(v).encode()) for v in table.column(col).to_pylist()):
                    found.append(f"{path}:{col}")
        elif rx.search(path.read_bytes()):
            found.append(str(path))
    online = Path(settings.path(settings.feature_store.online_path))
    if online.exists() and rx.search(online.read_bytes()):
        found.append(str(online))
    return found
