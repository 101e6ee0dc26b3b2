"""``lakehouse bench history``: the history load against the day-by-day path, at several scales.

Per scale (customers), on simulated sources of ``days`` dates: one Spark session loads all but the last
``daily_days`` dates as history (``pipeline.load_history``), then runs the last ones through the daily
path (``pipeline.run_range``, what the schedule does after a load). Written per scale: seconds per
stage of the load, rows and rows per second, the peak resident memory of the process tree, the daily
runs' seconds, and the day-by-day path over the whole range extrapolated from them (days x the mean
daily run after the load; running it in full takes about 45 minutes at 2,000 customers).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

from lakehouse.config import Settings, load_settings

log = logging.getLogger(__name__)


def scratch_settings(base: Settings, work: Path, sources: Path, api_url: str, extra: dict | None = None) -> Settings:
    """``base``'s environment with its lake, logs, sources, online store and MLflow store under ``work``,
    plus ``extra`` overrides (deep-merged)."""
    from lakehouse.config import deep_merge

    return load_settings(base.env, overrides=deep_merge({
        "lake": {"root": str(work / "lake")}, "logs_dir": str(work / "logs"),
        "sources": {"crm": {"url": f"jdbc:sqlite:{sources / 'crm' / 'crm.db'}"},
                    "billing": {"inbox": str(sources / "billing" / "inbox")},
                    "web": {"inbox": str(sources / "web" / "logs")},
                    "support_api": {"base_url": api_url}},
        "simulator": {"output_dir": str(sources)},
        "feature_store": {"online_path": str(work / "online" / "features.sqlite")},
        "mlflow": {"tracking_uri": f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
                   "artifact_root": str(work / "mlflow" / "artifacts")}}, extra or {}))


def bench_history(base: Settings, customers: list[int], days: int, daily_days: int, work: Path) -> list[dict]:
    import shutil

    from lakehouse.pipeline import DATA_STAGES, load_history, run_range
    from lakehouse.quality.runtime import shutdown_deequ
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session
    from lakehouse.tools.bench_features import PeakMemory

    token = os.environ.setdefault(base.simulator.api.token_env, "local-dev-token")
    os.environ.setdefault(base.quality.pii_key_env, "local-dev-pii-key")
    results = []
    for n in customers:
        root = work / f"customers_{n}"
        shutil.rmtree(root, ignore_errors=True)
        sim = base.simulator.model_copy(update={"customers": n, "days": days})
        t = time.perf_counter()
        summary = generate_sources(sim, root / "sources")
        generated = time.perf_counter() - t
        dates = [sim.start_date + dt.timedelta(days=i) for i in range(days)]
        history, daily = dates[:days - daily_days], dates[days - daily_days:]
        with ApiServer(root / "sources" / "support", token, rate_limit_per_s=1000) as api:
            settings = scratch_settings(base, root, root / "sources", api.url)
            spark = build_session(settings, "bench-history")
            try:
                log.info("%d customers: history load %s..%s", n, history[0], history[-1])
                with PeakMemory() as mem:
                    loaded = load_history(spark, settings, history[0], history[-1], today=dates[-1])
                load_peak = mem.mib
                with PeakMemory() as mem:
                    timings = run_range(spark, settings, daily, DATA_STAGES)
                daily_peak = mem.mib
            finally:
                shutdown_deequ(spark)
                spark.stop()
        per_daily = [sum(v for k, v in tm.items() if k != "date") for tm in timings]
        mean_daily = sum(per_daily) / len(per_daily)
        s, rows = loaded["seconds"], loaded["rows"]
        result = {
            "customers": n, "days": days, "history_dates": len(history), "daily_dates": len(daily),
            "generate_seconds": round(generated, 1), "web_events": summary.get("events"),
            "load_seconds": s, "rows": rows,
            "rows_per_second": {"ingest": round(rows["bronze"] / s["ingest"]),
                                "silver": round((rows["silver"] + rows["quarantined"]) / s["silver"]),
                                "gold": round(rows["customer_daily_features"] / s["gold"])},
            "load_peak_mib": load_peak, "daily_runs": timings, "daily_peak_mib": daily_peak,
            "daily_mean_seconds": round(mean_daily, 1),
            "day_by_day_extrapolated_seconds": round(mean_daily * len(history)),
            "speedup": round(mean_daily * len(history) / s["total"], 1),
        }
        log.info("%d customers: %s", n, json.dumps(result))
        results.append(result)
    return results


def write_results(results: list[dict], out_json: Path, out_md: Path) -> None:
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"measured": dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes"),
                                    "results": results}, indent=2) + "\n")
    lines = ["| customers x dates loaded | ingest s | silver s | gold s | materialize s | load total s | "
             "bronze rows | rows/s ingest / silver / gold | peak MiB (load) | daily run after it, s (mean) | "
             "day by day over the range, s (extrapolated) | speed-up |",
             "|---" * 12 + "|"]
    for r in results:
        s, rps = r["load_seconds"], r["rows_per_second"]
        lines.append(f"| {r['customers']:,} x {r['history_dates']} | {s['ingest']} | {s['silver']} | {s['gold']} | "
                     f"{s.get('materialize', 0)} | **{s['total']}** | {r['rows']['bronze']:,} | "
                     f"{rps['ingest']:,} / {rps['silver']:,} / {rps['gold']:,} | {r['load_peak_mib']:,} | "
                     f"{r['daily_mean_seconds']} | {r['day_by_day_extrapolated_seconds']:,} | {r['speedup']}x |")
    from lakehouse.tools.bench import replace_block

    replace_block(out_md, "<!-- bench history: start -->", "<!-- bench history: end -->", "\n".join(lines))
