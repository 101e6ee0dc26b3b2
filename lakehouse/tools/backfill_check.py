"""``lakehouse backfill-check``: does a history load leave the same tables as the same dates run day by day?

Two lakes are fed from one set of simulated sources (and one support-API server): lake A by a single
``lakehouse backfill --from FIRST --to LAST`` process (the set-based history load,
``pipeline.load_history``), lake B by one ``lakehouse run --run-date D`` process per date (what a
daily schedule does). Every Delta table of bronze, silver and gold is then
compared by row count and content checksum, run metadata excluded (run ids, load timestamps: the
only columns allowed to differ). Results go to a JSON file (bench-results/backfill_check.json by default).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lakehouse.config import PROJECT_ROOT, load_settings

log = logging.getLogger(__name__)
# run metadata: run ids, load times, and a checkpoint's fingerprint of the history files it was built
# from (the same rows in other files)
RUN_COLUMNS = ["_run_id", "_ingested_at", "_loaded_at", "_validated_at", "_built_at", "_covers"]
STAGES = "ingest,silver,gold"  # lakehouse.pipeline.STAGES up to gold: the tables compared


def _run(env: dict, args: list[str], log_path: Path) -> float:
    started = time.perf_counter()
    cmd = [str(Path(sys.executable).parent / "lakehouse"), "--env", env["_ENV"], *args, "--stages", STAGES]
    with open(log_path, "a") as fh:
        proc = subprocess.run(cmd, env={k: v for k, v in env.items() if k != "_ENV"}, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[1:])}` failed (exit {proc.returncode}); see {log_path}")
    return time.perf_counter() - started


def backfill_check(work: Path, days: int = 30, customers: int = 150, env_name: str = "test",
                   out: Path | None = None) -> dict:
    from lakehouse import delta_io
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session
    from lakehouse.storage import storage_for
    from lakehouse.tools.localcluster import pipeline_env
    from lakehouse.versioning import lake_tables

    work.mkdir(parents=True, exist_ok=True)
    for name in ("backfill", "daily"):  # both lakes start empty: rows an earlier check left would be compared too
        shutil.rmtree(work / name, ignore_errors=True)
    base = load_settings(env_name)
    sim = base.simulator.model_copy(update={"customers": customers, "days": max(days, base.simulator.days)})
    sources = work / "sources"
    log.info("generating %d customers x %d days into %s", customers, sim.days, sources)
    generate_sources(sim, sources)
    token = os.environ.setdefault("SUPPORT_API_TOKEN", "local-dev-token")
    os.environ.setdefault("PII_HASH_KEY", "local-dev-pii-key")
    dates = [sim.start_date + dt.timedelta(days=i) for i in range(days)]
    result: dict = {"days": days, "customers": customers, "first": str(dates[0]), "last": str(dates[-1]),
                    "stages": STAGES}
    with ApiServer(sources / "support", token, rate_limit_per_s=1000) as api:
        envs = {}
        for name in ("backfill", "daily"):
            envs[name] = dict(os.environ, _ENV=env_name, PYTHONUNBUFFERED="1",
                              **pipeline_env(str(work / name / "lake"), work / name, sources, api.url))
        log.info("history load: one process for %s..%s", dates[0], dates[-1])
        result["backfill_seconds"] = round(_run(envs["backfill"], ["backfill", "--from", str(dates[0]), "--to",
                                                                   str(dates[-1])], work / "backfill.log"), 1)
        result["daily_seconds"] = 0.0
        for i, day in enumerate(dates, 1):
            result["daily_seconds"] += _run(envs["daily"], ["run", "--run-date", str(day)], work / "daily.log")
            log.info("daily run %d/%d (%s) done; %.0fs so far", i, len(dates), day, result["daily_seconds"])
        result["daily_seconds"] = round(result["daily_seconds"], 1)
    settings = {n: load_settings(env_name, overrides={"lake": {"root": str(work / n / "lake")}}) for n in envs}
    spark = build_session(settings["backfill"], "backfill-check")
    tables, same = {}, True
    names_a = [f"{layer}/{n}" for layer, n in lake_tables(spark, settings["backfill"]) if layer != "ops"]
    names_b = [f"{layer}/{n}" for layer, n in lake_tables(spark, settings["daily"]) if layer != "ops"]
    for rel in sorted(set(names_a) | set(names_b)):
        sums = {}
        for n in envs:
            uri = storage_for(settings[n]).join(rel)
            sums[n] = delta_io.content_checksum(delta_io.read(spark, uri), exclude=RUN_COLUMNS) \
                if rel in (names_a if n == "backfill" else names_b) else None
        equal = sums["backfill"] == sums["daily"]
        same &= equal
        tables[rel] = {"rows": sums["backfill"][0] if sums["backfill"] else None, "equal": equal,
                       **({} if equal else {"backfill": sums["backfill"], "daily": sums["daily"]})}
        log.info("%-40s rows %s %s", rel, tables[rel]["rows"], "equal" if equal else "DIFFERENT")
    result.update(tables=tables, identical=same)
    out = out or PROJECT_ROOT / "bench-results" / "backfill_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("history load %s daily runs over %d days: %d tables compared (%s); written to %s",
             "==" if same else "!=", days, len(tables), "identical" if same else "DIFFERENCES", out)
    return result
