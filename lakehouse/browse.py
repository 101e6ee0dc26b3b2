"""Looking into the lake from the command line: raw partitions, raw samples, table samples.

These give users the "what did we ingest?" view (the seed's screenshots of ingested raw data) as
text that can be pasted into docs or a ticket.
"""

from __future__ import annotations

import json
from typing import Iterator

from lakehouse import tables
from lakehouse.config import Settings
from lakehouse.storage import Storage, storage_for


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def raw_partitions(storage: Storage, source: str | None = None, type_: str | None = None) -> Iterator[dict]:
    """Each raw partition with its size and manifest summary, sorted by source, type, date."""
    for s_name, s_dir, _ in storage.list_dir("raw"):
        if not s_dir or not s_name.startswith("source=") or (source and s_name != f"source={source}"):
            continue
        for t_name, t_dir, _ in storage.list_dir(f"raw/{s_name}"):
            if not t_dir or not t_name.startswith("type=") or (type_ and t_name != f"type={type_}"):
                continue
            for d_name, d_dir, _ in storage.list_dir(f"raw/{s_name}/{t_name}"):
                if not d_dir or not d_name.startswith("date="):
                    continue
                rel = f"raw/{s_name}/{t_name}/{d_name}"
                entries = storage.list_dir(rel)
                manifest = {}
                if any(n == "_manifest.json" for n, _, _ in entries):
                    manifest = json.loads(storage.read_bytes(f"{rel}/_manifest.json"))
                yield {
                    "path": rel, "source": s_name[7:], "type": t_name[5:], "date": d_name[5:],
                    "files": sum(1 for n, d, _ in entries if not d and n != "_manifest.json"),
                    "bytes": sum(sz for n, d, sz in entries if not d and n != "_manifest.json"),
                    "rows": manifest.get("rows"), "attempts": manifest.get("attempts"),
                    "fetched_at": manifest.get("fetched_at"), "run_id": manifest.get("run_id"),
                }


def format_partitions(parts: list[dict]) -> str:
    header = f"{'source':<12} {'type':<14} {'date':<10} {'files':>5} {'size':>10} {'rows':>8} {'tries':>5}  fetched_at"
    lines = [header, "-" * len(header)]
    for p in parts:
        lines.append(f"{p['source']:<12} {p['type']:<14} {p['date']:<10} {p['files']:>5} {_human(p['bytes']):>10} "
                     f"{p['rows'] if p['rows'] is not None else '?':>8} {p['attempts'] or '?':>5}  {p['fetched_at'] or ''}")
    total = sum(p["bytes"] for p in parts)
    lines.append(f"{len(parts)} partition(s), {_human(total)}")
    return "\n".join(lines)


def raw_sample(settings: Settings, source: str, type_: str, date: str, lines: int = 10) -> str:
    storage = storage_for(settings)
    rel = f"raw/source={source}/type={type_}/date={date}"
    entries = [n for n, d, _ in storage.list_dir(rel) if not d]
    if not entries:
        return f"no raw partition at {storage.join(rel)}"
    out = [f"# {storage.join(rel)}"]
    if "_manifest.json" in entries:
        out += ["## _manifest.json", storage.read_bytes(f"{rel}/_manifest.json").decode()]
    data_files = [n for n in entries if n != "_manifest.json"]
    first = data_files[0]
    text = storage.read_bytes(f"{rel}/{first}").decode("utf-8", errors="replace")
    if first.endswith(".json"):  # an API page: pretty-print the first records
        body = json.loads(text)
        shown = {**body, "data": body.get("data", [])[:lines]}
        text_lines = json.dumps(shown, indent=2).splitlines()
    else:
        text_lines = text.splitlines()[:lines]
    out += [f"## {first} (first {lines} records of {len(data_files)} file(s))", *text_lines]
    return "\n".join(out)


def table_sample(spark, settings: Settings, layer: str, name: str, date: str | None = None, limit: int = 10) -> str:
    from pyspark.sql import functions as F

    from lakehouse import delta_io

    uri = tables.Table(layer, name).uri(settings)
    if not delta_io.is_delta(spark, uri):
        return f"no Delta table at {uri}"
    df = delta_io.read(spark, uri)
    if date and "_ingest_date" in df.columns:
        df = df.where(F.col("_ingest_date") == F.lit(date).cast("date"))
    version = delta_io.latest_version(spark, uri)
    rows = df.count()
    shown = df.limit(limit).toPandas()
    return (f"# {layer}.{name} (version {version}, {rows} rows{', date ' + date if date else ''})\n"
            + shown.to_string(index=False, max_colwidth=40))
