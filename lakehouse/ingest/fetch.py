"""Fetching one logical date from each kind of source, through its protocol only.

Each fetcher returns a ``Fetched``: the exact bytes to land in the raw zone (file name -> bytes),
the record count and details for the manifest. Nothing is written here: the caller lands the bytes
only once the whole date was fetched, so a failed fetch leaves no partial output.

- files (billing CSV exports, web JSON-lines logs): the file(s) of that date in the inbox folder.
- JDBC (CRM change tables): rows whose ``updated_column`` falls on that date, read by Spark's JDBC
  reader and landed as JSON lines (a database has no file to copy; this is the fetched result).
- HTTP (support vendor API): every page of that date, each response body landed as it came.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from lakehouse.config import FileSource, HttpSource, JdbcSource, Settings, secret
from lakehouse.errors import SourceError
from lakehouse.ingest.retry import TransientError

log = logging.getLogger(__name__)


@dataclass
class Fetched:
    files: dict[str, bytes]
    rows: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(len(b) for b in self.files.values())


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


def count_records(data: bytes, fmt: str) -> int:
    """Records in one fetched file: lines (less a CSV header), or an API page's ``data`` entries."""
    if fmt == "api":
        return len(json.loads(data)["data"])
    lines = count_lines(data)
    return lines - 1 if fmt == "csv" and lines else lines


# ---- files ----------------------------------------------------------------------------------
def fetch_files(settings: Settings, source: str, cfg: FileSource, run_date: dt.date) -> Fetched:
    inbox = settings.path(cfg.inbox)
    pattern = cfg.pattern.format(date=run_date.isoformat())
    if not inbox.is_dir():
        raise SourceError(f"{source}: inbox folder {inbox} does not exist (sources.{source}.inbox)")
    matches = sorted(Path(p) for p in glob.glob(str(inbox / pattern)))
    if not matches:
        raise SourceError(f"{source}: no file for {run_date} in {inbox} (expected {pattern})")
    files, rows = {}, 0
    for path in matches:
        data = path.read_bytes()
        name = path.relative_to(inbox).as_posix().replace("/", "__")
        files[name] = data
        rows += count_records(data, cfg.format)
    return Fetched(files, rows, {"inbox": str(inbox), "pattern": pattern,
                                 "files": [str(p) for p in matches]})


# ---- JDBC -----------------------------------------------------------------------------------
TRANSIENT_JDBC = ("Connection refused", "connection attempt failed", "SQLITE_BUSY", "database is locked",
                  "timed out", "Connection reset", "The connection attempt failed")


def fetch_jdbc_table(spark, source: str, cfg: JdbcSource, table: str, run_date: dt.date) -> Fetched:
    start, end = run_date.isoformat(), (run_date + dt.timedelta(days=1)).isoformat()
    col = cfg.updated_column
    query = f"SELECT * FROM {table} WHERE {col} >= '{start}' AND {col} < '{end}'"
    reader = (spark.read.format("jdbc").option("url", cfg.url).option("driver", cfg.driver)
              .option("query", query))
    user = secret(cfg.user_env, f"sources.{source}.user_env")
    password = secret(cfg.password_env, f"sources.{source}.password_env")
    if user:
        reader = reader.option("user", user)
    if password:
        reader = reader.option("password", password)
    try:
        df = reader.load()
        rows = [r.asDict() for r in df.collect()]
    except Exception as exc:  # py4j wraps the JDBC driver's exception
        text = str(exc)
        first = next((ln.strip() for ln in text.splitlines() if "Exception" in ln), text.splitlines()[0])
        if any(marker.lower() in text.lower() for marker in TRANSIENT_JDBC):
            raise TransientError(f"{source}.{table}: {first[:300]}") from None
        raise SourceError(f"{source}.{table}: query failed: {first[:300]}") from None
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str))
    body = "".join(json.dumps(r, default=str) + "\n" for r in rows).encode()
    safe_url = cfg.url.split("?")[0]
    return Fetched({f"{table}.jsonl": body}, len(rows), {"url": safe_url, "query": query})


# ---- HTTP -----------------------------------------------------------------------------------
def fetch_api_endpoint(settings: Settings, source: str, cfg: HttpSource, endpoint: str, run_date: dt.date,
                       session: requests.Session | None = None, call=None) -> Fetched:
    """All pages of one endpoint for one date. ``call`` wraps each page request with retries."""
    token = secret(cfg.token_env, f"sources.{source}.token_env")
    http = session or requests.Session()
    url = f"{cfg.base_url.rstrip('/')}/api/v1/{endpoint}"
    timeout = settings.retry.timeout_s

    def get_page(page: int) -> requests.Response:
        try:
            resp = http.get(url, params={"date": run_date.isoformat(), "page": page, "page_size": cfg.page_size},
                            headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{url} page {page}: {type(exc).__name__}: {_short(exc)}") from None
        if resp.status_code == 429:
            raise TransientError(f"{url} page {page}: 429 rate limited", _retry_after(resp))
        if resp.status_code >= 500:
            raise TransientError(f"{url} page {page}: HTTP {resp.status_code}", _retry_after(resp))
        if resp.status_code in (401, 403):
            raise SourceError(f"{source}: {url} refused the token from ${cfg.token_env} (HTTP {resp.status_code})")
        if resp.status_code != 200:
            raise SourceError(f"{source}: {url} page {page}: HTTP {resp.status_code}: {resp.text[:200]}")
        return resp

    files, rows, page, total = {}, 0, 1, None
    while page:
        resp = call(lambda p=page: get_page(p)) if call else get_page(page)
        try:
            body = resp.json()
            data, next_page, total = body["data"], body["next_page"], body["total"]
        except (ValueError, KeyError) as exc:
            raise SourceError(f"{source}: {url} page {page}: unexpected response ({exc}): {resp.text[:200]}") from None
        files[f"{endpoint}-page-{page:05d}.json"] = resp.content
        rows += len(data)
        page = next_page
    if total is not None and rows != total:
        raise SourceError(f"{source}: {url} for {run_date}: pages held {rows} records, API reported {total}")
    return Fetched(files, rows, {"url": url, "pages": len(files), "page_size": cfg.page_size})


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]

