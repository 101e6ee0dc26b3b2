"""``lakehouse bench pipeline``: the whole pipeline end to end at several scales, per stage.

Per scale (customers), on simulated sources of ``days`` dates, in one Spark session (as ``make demo``
runs it): the history load of all but the last ``daily_days`` dates, one stage at a time
(``pipeline.load_history``), then the last dates through the daily path (``pipeline.run_stage`` per
stage and date, what the schedule does after a load), then training on the last date
(``ml.train.train_models``) and scoring it with the champion (``ml.scoring.score_customers``), and
last the weekly maintenance's compaction (``maintenance.compact_lake``).

Written per stage and scale: wall seconds, rows in and out and rows per second (what counts as a row
per stage is in ``STAGE_ROWS``), the peak resident memory of the process tree (Python and the Spark
JVM), the files and bytes the stage added to the lake (raw zone included) and the Delta commits it
made. At the end of each scale: files per partition of every Delta table (active files from the
table's snapshot, not the folder, which also holds files earlier versions refer to), and the size of
the lake. Results: ``docs/benchmarks-pipeline.json`` (kept in git, so a scale measured alone merges
with the scales on record) and ``docs/benchmarks-pipeline.md`` with a log-log
plot of each stage's seconds against customers (``docs/benchmarks-pipeline.png``).

Each scale's results are written as soon as it finishes, so a larger scale that fails or is stopped
leaves the smaller ones on record.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from pathlib import Path

from lakehouse.config import Settings

log = logging.getLogger(__name__)

# what rows in / rows out mean per stage (rows per second are over rows in)
STAGE_ROWS = {
    "ingest": ("records fetched from the sources", "bronze rows written"),
    "silver": ("bronze rows validated", "silver rows + quarantined rows written"),
    "gold": ("silver rows of the dates", "feature snapshot rows written"),
    "materialize": ("feature rows of the last date", "online store rows"),
    "train": ("training set rows (all snapshot dates)", "models fitted"),
    "score": ("customers with features on the date", "scores written"),
    "compact": ("active files of every table", "active files after compaction"),
}


# ---- what a stage did to the lake ---------------------------------------------------------------

def lake_state(root: Path) -> dict[str, int]:
    """Every file under the lake root with its size (a local lake)."""
    state = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                state[path] = os.path.getsize(path)
            except OSError:  # removed while listing
                continue
    return state


def _commit_info(path: str) -> dict:
    with open(path) as fh:
        for line in fh:
            action = json.loads(line)
            if "commitInfo" in action:
                return action["commitInfo"]
    return {}


def lake_change(before: dict[str, int], after: dict[str, int]) -> dict:
    """Files and bytes added between two ``lake_state`` listings, and the Delta commits among them."""
    new = [p for p in after if p not in before]
    commits = sorted(p for p in new if os.path.basename(os.path.dirname(p)) == "_delta_log"
                     and p.endswith(".json") and os.path.basename(p)[:20].isdigit())
    per_table: dict[str, int] = {}
    rows_written = 0
    for p in commits:
        table = os.path.dirname(os.path.dirname(p))
        key = "/".join(Path(table).parts[-2:])
        per_table[key] = per_table.get(key, 0) + 1
        metrics = _commit_info(p).get("operationMetrics") or {}
        rows_written += int(metrics.get("numOutputRows", 0) or 0)
    data = [p for p in new if "/_delta_log/" not in p and not os.path.basename(p).startswith(".")]
    return {"files_added": len(data), "bytes_added": sum(after[p] for p in data),
            "commits": len(commits), "commits_per_table": dict(sorted(per_table.items())),
            "rows_committed": rows_written}


def files_per_partition(spark, lake: Path) -> list[dict]:
    """Per Delta table: active data files, partitions holding them, files per partition, MiB."""
    from lakehouse.maintenance import file_layout

    out = []
    for log_dir in sorted(lake.glob("*/*/_delta_log")):
        table = log_dir.parent
        layout = file_layout(spark, str(table))
        out.append({"table": f"{table.parent.name}.{table.name}", "files": layout["files"],
                    "partitions": layout["partitions"], "partition_columns": layout["partition_columns"],
                    "files_per_partition": layout["files_per_partition"], "mib": round(layout["bytes"] / 2**20, 1)})
    return out


# ---- rows of each stage's results -----------------------------------------------------------------

def _sum(obj, key: str) -> int:
    """The sum of every ``key`` in a nested structure of dicts and lists (a stage's result)."""
    if isinstance(obj, dict):
        return sum(int(v or 0) if k == key and not isinstance(v, (dict, list)) else _sum(v, key)
                   for k, v in obj.items())
    if isinstance(obj, list):
        return sum(_sum(v, key) for v in obj)
    return 0


def _count(value) -> int:
    """A simulator summary's count: a number, or a mapping (per day or kind) of numbers."""
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    return int(value or 0)


def _as_dict(result):
    return result.as_dict() if hasattr(result, "as_dict") else result


def daily_rows(stage: str, result, silver_out: int = 0) -> tuple[int, int]:
    """(rows in, rows out) of a daily stage from what the stage returned (gold's rows in: ``silver_out``,
    the date's silver rows)."""
    r = _as_dict(result)
    if stage == "ingest":
        return _sum(r, "rows_fetched"), _sum(r, "bronze_rows")
    if stage == "silver":
        return _sum(r, "bronze_rows"), _sum(r, "silver_rows") + _sum(r, "quarantined")
    if stage == "gold":
        return silver_out, int(r.get("rows", {}).get("customer_daily_features", 0))
    if stage == "materialize":
        return int(r.get("rows", 0)), int(r.get("rows", 0))
    return 0, 0


# ---- the benchmark --------------------------------------------------------------------------------

def _generated(sim, sources: Path) -> dict | None:
    """The summary of sources this benchmark generated earlier with the same simulator settings (it
    writes ``bench-simulator.json`` after the generator finished), else None."""
    marker = sources / "bench-simulator.json"
    if not marker.exists() or json.loads(marker.read_text()) != sim.model_dump(mode="json"):
        return None
    return json.loads((sources / "ground_truth" / "summary.json").read_text())


class _Stages:
    """Runs steps, recording per step: seconds, rows, peak memory, files, bytes and commits."""

    def __init__(self, lake: Path):
        self.lake = lake
        self.steps: list[dict] = []

    def run(self, phase: str, stage: str, fn, rows=None):
        from lakehouse.tools.bench_features import PeakMemory

        before = lake_state(self.lake)
        t = time.perf_counter()
        with PeakMemory() as mem:
            result = fn()
        seconds = time.perf_counter() - t
        rows_in, rows_out = rows(result) if rows else (0, 0)
        step = {"phase": phase, "stage": stage, "seconds": round(seconds, 1), "rows_in": rows_in,
                "rows_out": rows_out, "rows_per_second": round(rows_in / seconds) if seconds and rows_in else None,
                "peak_mib": mem.mib, **lake_change(before, lake_state(self.lake))}
        log.info("%s %s: %.1fs, rows %d -> %d, peak %d MiB, %d files (%.1f MiB), %d commits", phase, stage,
                 seconds, rows_in, rows_out, mem.mib, step["files_added"], step["bytes_added"] / 2**20,
                 step["commits"])
        self.steps.append(step)
        return result


def _summary(steps: list[dict]) -> dict:
    """Per stage over the phases (history load, daily runs): seconds, rows, files, commits, peak."""
    out: dict[str, dict] = {}
    for s in steps:
        key = f"{s['phase']}:{s['stage']}"
        agg = out.setdefault(key, {"phase": s["phase"], "stage": s["stage"], "runs": 0, "seconds": 0.0,
                                   "rows_in": 0, "rows_out": 0, "peak_mib": 0, "files_added": 0,
                                   "bytes_added": 0, "commits": 0})
        agg["runs"] += 1
        for k in ("seconds", "rows_in", "rows_out", "files_added", "bytes_added", "commits"):
            agg[k] += s[k]
        agg["peak_mib"] = max(agg["peak_mib"], s["peak_mib"])
    for agg in out.values():
        agg["seconds"] = round(agg["seconds"], 1)
        agg["rows_per_second"] = round(agg["rows_in"] / agg["seconds"]) if agg["seconds"] and agg["rows_in"] else None
    return out


def bench_pipeline(base: Settings, customers: list[int], days: int, daily_days: int, work: Path,
                   on_scale=None, overrides: dict | None = None) -> list[dict]:
    from lakehouse.ml.scoring import score_customers
    from lakehouse.ml.train import train_models
    from lakehouse.pipeline import DATA_STAGES, load_history, run_stage
    from lakehouse.quality.runtime import shutdown_deequ
    from lakehouse.run_ids import new_run_id
    from lakehouse.simulator.api import ApiServer
    from lakehouse.simulator.systems import generate_sources
    from lakehouse.spark import build_session
    from lakehouse.tools.bench_features import PeakMemory
    from lakehouse.tools.bench_history import scratch_settings
    from lakehouse.versioning import record_run

    token = os.environ.setdefault(base.simulator.api.token_env, "local-dev-token")
    os.environ.setdefault(base.quality.pii_key_env, "local-dev-pii-key")
    results = []
    for n in customers:
        root = work / f"customers_{n}"
        sim = base.simulator.model_copy(update={"customers": n, "days": days})
        summary = _generated(sim, root / "sources")  # the simulator is deterministic: same config, same files
        for folder in ("lake", "logs", "online", "mlflow"):
            shutil.rmtree(root / folder, ignore_errors=True)
        t = time.perf_counter()
        if summary is None:
            shutil.rmtree(root, ignore_errors=True)
            summary = generate_sources(sim, root / "sources")
            generated = round(time.perf_counter() - t, 1)
            (root / "sources" / "bench-simulator.json").write_text(json.dumps(sim.model_dump(mode="json")))
        else:
            log.info("%d customers x %d days: the sources generated before are reused", n, days)
            generated = None
        dates = [sim.start_date + dt.timedelta(days=i) for i in range(days)]
        history, daily = dates[:days - daily_days], dates[days - daily_days:]
        started = time.perf_counter()
        with ApiServer(root / "sources" / "support", token, rate_limit_per_s=1000) as api, \
                PeakMemory() as overall:
            settings = scratch_settings(base, root, root / "sources", api.url, overrides)
            lake = settings.path(settings.lake.root)
            stages = _Stages(lake)
            spark = build_session(settings, "bench-pipeline")
            spark_memory = spark.sparkContext.getConf().get("spark.driver.memory", "?")
            try:
                run_id = new_run_id("history", history[-1])
                loaded: dict = {}

                def load(stage):
                    out = load_history(spark, settings, history[0], history[-1], [stage], run_id=run_id,
                                       today=dates[-1], record=False)
                    loaded.update(out["rows"])
                    return out

                log.info("%d customers x %d days: history load %s..%s", n, days, history[0], history[-1])
                stages.run("history", "ingest", lambda: load("ingest"),
                           lambda r: (r["rows"]["bronze"], r["rows"]["bronze"]))
                stages.run("history", "silver", lambda: load("silver"),
                           lambda r: (loaded["bronze"], r["rows"]["silver"] + r["rows"]["quarantined"]))
                stages.run("history", "gold", lambda: load("gold"),
                           lambda r: (loaded["silver"], r["rows"].get("customer_daily_features", 0)))
                stages.run("history", "materialize", lambda: load("materialize"), None)
                record_run(spark, settings, run_id, f"history {history[0]}..{history[-1]}", history[-1].isoformat())
                silver_out = 0  # gold's rows in: the date's silver rows (it also reads the state before them)
                for day in daily:
                    for stage in DATA_STAGES:
                        result = stages.run("daily", stage, lambda s=stage, d=day: run_stage(spark, settings, s, d),
                                            lambda r, s=stage: daily_rows(s, r, silver_out))
                        if stage == "silver":
                            silver_out = daily_rows("silver", result)[1]
                last = dates[-1]
                trained = stages.run("model", "train", lambda: train_models(spark, settings, last),
                                     lambda r: (sum(v for k, v in r.rows.items() if k in ("train", "eval")),
                                                len(r.metrics)))
                scored = stages.run("model", "score", lambda: score_customers(spark, settings, last),
                                    lambda r: (r["scored"], r["scored"]))
                layout = files_per_partition(spark, lake)
                # the weekly maintenance (compaction of crowded partitions) on the lake the 90 days left
                from lakehouse.maintenance import compact_lake

                stages.run("maintenance", "compact", lambda: compact_lake(spark, settings, last, "bench-maintenance"),
                           lambda r: (r["files_before"], r["files_after"]))
                compacted = files_per_partition(spark, lake)
            finally:
                shutdown_deequ(spark)
                spark.stop()
        total = round(time.perf_counter() - started, 1)
        steps = stages.steps
        daily_steps = [s for s in steps if s["phase"] == "daily"]
        per = len(DATA_STAGES)
        daily_seconds = [round(sum(s["seconds"] for s in daily_steps[i:i + per]), 1)
                         for i in range(0, len(daily_steps), per)]
        result = {
            "measured": dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes"),
            "driver_memory": spark_memory, "customers": n, "days": days, "history_dates": len(history), "daily_dates": len(daily),
            "generate_seconds": generated, "web_events": _count(summary.get("web_events")),
            "total_seconds": total, "peak_mib": overall.mib, "peak_anon_mib": overall.anon_mib,
            "steps": steps, "stages": _summary(steps),
            "history_seconds": round(sum(s["seconds"] for s in steps if s["phase"] == "history"), 1),
            "daily_seconds": daily_seconds,
            "daily_mean_seconds": round(sum(daily_seconds) / len(daily_seconds), 1) if daily_seconds else None,
            "model": {"champion": trained.best, "metrics": {a: round(m.get("roc_auc", 0), 4)
                                                            for a, m in trained.metrics.items()},
                      "training_rows": trained.rows, "scored": scored["scored"]},
            "tables": layout, "tables_compacted": compacted,
            "lake_mib": round(sum(lake_state(lake).values()) / 2**20, 1),
        }
        dated = [t for t in layout if t["partition_columns"] and t["files"]]
        result["files_per_partition_dated"] = round(sum(t["files"] for t in dated)
                                                    / max(1, sum(t["partitions"] for t in dated)), 2)
        result["files_per_partition_max"] = max((t["files_per_partition"] for t in layout), default=0)
        result["files_per_partition_max_compacted"] = max((t["files_per_partition"] for t in compacted), default=0)
        log.info("%d customers: %.0fs in all, peak %d MiB", n, total, overall.mib)
        results.append(result)
        if on_scale:
            on_scale(results)
    return results


# ---- results ----------------------------------------------------------------------------------

STAGE_ORDER = ["history:ingest", "history:silver", "history:gold", "history:materialize",
               "daily:ingest", "daily:silver", "daily:gold", "daily:materialize", "model:train", "model:score",
               "maintenance:compact"]


def render(results: list[dict]) -> str:
    """The Markdown tables of ``docs/benchmarks-pipeline.md`` (between its markers)."""
    lines = ["| customers x days | driver memory | web events | history load s | daily run s (mean) | train s | score s | "
             "**in all** s | peak MiB | lake MiB | files per partition (dated tables, mean / worst table / "
             "worst after compaction) | champion (ROC AUC) |",
             "|---" * 12 + "|"]
    for r in results:
        st = r["stages"]
        lines.append(
            f"| {r['customers']:,} x {r['days']} | {r.get('driver_memory', '?')} | {r['web_events'] or 0:,} | "
            f"{r['history_seconds']} | "
            f"{r['daily_mean_seconds']} | {st['model:train']['seconds']} | {st['model:score']['seconds']} | "
            f"**{r['total_seconds']}** | {r['peak_mib']:,} | {r['lake_mib']:,} | "
            f"{r['files_per_partition_dated']} / {r['files_per_partition_max']} / "
            f"{r.get('files_per_partition_max_compacted', '-')} | "
            f"{r['model']['champion']} ({r['model']['metrics'].get(r['model']['champion'])}) |")
    lines += ["", "Per stage (history: one pass over the loaded dates; daily: summed over the daily dates). Rows in "
              "-> rows out: " + "; ".join(f"{k}: {i} -> {o}" for k, (i, o) in STAGE_ROWS.items()) + ".", "",
              "| customers | stage | runs | s | rows in | rows out | rows/s (in) | peak MiB | files added | "
              "MiB added | Delta commits |", "|---" * 11 + "|"]
    for r in results:
        for key in STAGE_ORDER:
            s = r["stages"].get(key)
            if not s:
                continue
            rps = f"{s['rows_per_second']:,}" if s["rows_per_second"] else "-"
            lines.append(f"| {r['customers']:,} | {key.replace(':', ' ')} | {s['runs']} | {s['seconds']} | "
                         f"{s['rows_in']:,} | {s['rows_out']:,} | {rps} | {s['peak_mib']:,} | "
                         f"{s['files_added']:,} | {s['bytes_added'] / 2**20:,.1f} | {s['commits']} |")
    big = results[-1]
    lines += ["", f"Files per partition at the end, {big['customers']:,} customers (active files of each "
              "table's latest version):", "",
              "| table | partitioned by | files | partitions | files per partition | after compaction | MiB |",
              "|---" * 7 + "|"]
    after = {t["table"]: t for t in big.get("tables_compacted", [])}
    for t in big["tables"]:
        compacted = after[t["table"]]["files_per_partition"] if t["table"] in after else "-"
        lines.append(f"| {t['table']} | {', '.join(t['partition_columns']) or '-'} | {t['files']:,} | "
                     f"{t['partitions']:,} | {t['files_per_partition']} | {compacted} | {t['mib']:,} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> Path | None:
    """Each stage's seconds against customers, log-log (needs two scales or more)."""
    if len(results) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["customers"] for r in results]
    fig, ax = plt.subplots(figsize=(8, 5))
    for key in STAGE_ORDER:
        ys = [r["stages"].get(key, {}).get("seconds") for r in results]
        if all(y for y in ys):
            ax.plot(xs, ys, marker="o", label=key.replace(":", " "))
    ax.plot(xs, [r["total_seconds"] for r in results], marker="s", color="black", linewidth=2, label="in all")
    lo = results[0]["total_seconds"]
    ax.plot(xs, [lo * x / xs[0] for x in xs], linestyle=":", color="grey", label="linear in customers")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("customers")
    ax.set_ylabel("seconds")
    ax.set_title(f"Pipeline stages against customers ({results[0]['days']} simulated days)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(results: list[dict], out_json: Path, out_md: Path) -> list[dict]:
    """Write ``results`` with those already in ``out_json`` for other scales (a scale measured again
    replaces its entry, so scales can be run one process each); returns what was written."""
    from lakehouse.tools.bench import machine, replace_block

    out_json.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(out_json.read_text())["results"] if out_json.exists() else []
    mine = {r["customers"] for r in results}
    results = sorted([r for r in kept if r["customers"] not in mine] + results, key=lambda r: r["customers"])
    out_json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")
    replace_block(out_md, "<!-- bench pipeline: start -->", "<!-- bench pipeline: end -->", render(results))
    plot(results, out_md.with_suffix(".png"))
    return results
