"""Benchmarks: measure, write results, assert nothing (targets are read by people, not tests).

``lakehouse bench ingest --scales 1,10 --days 4`` generates the simulated sources at each scale
(customers = simulator.customers x scale), ingests every source for each date in one Spark session,
and writes per-source, per-day timings to ``bench-results/ingest.json`` and a Markdown table to
``docs/benchmarks-ingest.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from lakehouse.config import Settings, load_settings

log = logging.getLogger(__name__)
SOURCES = ["crm", "billing", "web", "support_api"]


def machine() -> str:
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = f", {int(fh.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def bench_ingest(settings: Settings, scales: list[float], days: int, out_json: Path, out_md: Path) -> list[dict]:
    from lakehouse.ingest.run import ingest_source
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session

    results = []
    work = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    token = os.environ.setdefault(settings.simulator.api.token_env, "bench-token")
    spark = None
    try:
        for scale in scales:
            root = work / f"x{scale:g}"
            sim = settings.simulator.model_copy(update={"customers": int(settings.simulator.customers * scale),
                                                        "days": days})
            t0 = time.perf_counter()
            summary = generate_sources(sim, root / "sources")
            gen_s = time.perf_counter() - t0
            with ApiServer(root / "sources" / "support", token, rate_limit_per_s=10000) as api:
                src = root / "sources"
                run = load_settings(settings.env, overrides={
                    "lake": {"root": str(root / "lake")}, "logs_dir": str(root / "logs"),
                    "sources": {"crm": {"url": f"jdbc:sqlite:{src / 'crm' / 'crm.db'}"},
                                "billing": {"inbox": str(src / "billing" / "inbox")},
                                "web": {"inbox": str(src / "web" / "logs")},
                                "support_api": {"base_url": api.url}}})
                if spark is None:
                    spark = build_session(run, "bench")
                for i in range(days):
                    day = sim.start_date + dt.timedelta(days=i)
                    for source in SOURCES:
                        t = time.perf_counter()
                        r = ingest_source(spark, run, source, day)
                        results.append({
                            "scale": scale, "customers": sim.customers, "date": str(day), "source": source,
                            "seconds": round(time.perf_counter() - t, 2),
                            "rows": sum(x.rows_fetched for x in r.types), "bytes": sum(x.bytes for x in r.types),
                            "generation_s": round(gen_s, 1), "web_events_total": summary["web_events"]})
                        log.info("bench x%g %s %s: %.2fs", scale, day, source, results[-1]["seconds"])
    finally:
        if spark is not None:
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    out_md.write_text(render_markdown(results, days))
    return results


def render_markdown(results: list[dict], days: int) -> str:
    lines = ["# Ingestion benchmark", "",
             f"Machine: {machine()}. Spark local, one session for the whole run; each cell is the wall time of "
             "one `ingest_source` call (fetch with retries, raw zone write, bronze parse and Delta commit).",
             f"Sources generated with `simulator.days = {days}` (so the 30 % of customers who arrive during the "
             "simulation arrive within these days, and the price rise falls on day "
             f"{days // 2 + 1}). Day 1 carries the CRM's full go-live snapshot; later days carry that day's changes.",
             "",
             "| scale | customers | date | source | seconds | records | bytes | records/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0
        lines.append(f"| x{r['scale']:g} | {r['customers']} | {r['date']} | {r['source']} | {r['seconds']:.2f} | "
                     f"{r['rows']} | {r['bytes']} | {rate:.0f} |")
    lines += ["", "Per source, mean seconds per day over days 2+:", "", "| scale | source | mean s/day | mean records/day |",
              "| --- | --- | --- | --- |"]
    for scale in sorted({r["scale"] for r in results}):
        for source in SOURCES:
            rows = [r for r in results if r["scale"] == scale and r["source"] == source][1:]
            if rows:
                lines.append(f"| x{scale:g} | {source} | {sum(r['seconds'] for r in rows) / len(rows):.2f} | "
                             f"{sum(r['rows'] for r in rows) / len(rows):.0f} |")
    return "\n".join(lines) + "\n"
