"""``lakehouse bench byod``: bring-your-own-data models against their plain baselines, on several files.

Files of both shapes with a known signal, generated here: the example generator's labelled snapshot
(a linear signal with planted data problems) and its order log, and a snapshot whose churn follows
thresholds and an interaction (trees should beat a linear model there). Each runs through
``byod.pipeline.run_profile`` as ``lakehouse byod run`` does; the snapshot also with balanced class
weights, to compare calibration. Written per file: each tuned algorithm's evaluation ROC AUC (with its
bootstrap interval) beside its plain baseline's, the Brier scores, the registered model and the run's
seconds; checked against docs/byod.md's targets (tuned >= plain - 0.005; registered >= best plain).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from lakehouse.config import PROJECT_ROOT, Settings, load_settings

TOLERANCE = 0.005
RUN_DATE = dt.date(2026, 6, 30)


def write_nonlinear(path: Path, customers: int, seed: int) -> None:
    """A snapshot whose churn depends on thresholds and an interaction, plus noise columns."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "usage_hours", "tickets", "discount", "age_months", "noise_a", "noise_b", "segment",
                    "channel", "churn"])
        for i in range(customers):
            usage = float(rng.gamma(2.0, 10.0))
            tickets = int(rng.poisson(1.5))
            discount = float(rng.uniform(0, 0.4))
            age = int(rng.integers(1, 60))
            segment = str(rng.choice(["consumer", "smb", "enterprise"], p=[0.6, 0.3, 0.1]))
            channel = str(rng.choice(["web", "store", "partner"]))
            logit = (-2.2 + 2.0 * (usage < 8) + 1.5 * (tickets >= 3) * (discount < 0.1)
                     + 1.2 * (age < 6) - 1.0 * (segment == "enterprise") + 0.8 * math.sin(usage / 6))
            churn = rng.random() < 1 / (1 + math.exp(-logit))
            w.writerow([f"N{i:06d}", f"{usage:.2f}", tickets, f"{discount:.3f}", age, f"{rng.normal():.3f}",
                        f"{rng.uniform():.3f}", segment, channel, "1" if churn else "0"])


NONLINEAR_PROFILE = {
    "name": "bench_nonlinear", "shape": "snapshot", "customer_id": "id",
    "label": {"column": "churn", "churned": ["1"], "retained": ["0"]},
    "numeric": ["usage_hours", "tickets", "discount", "age_months", "noise_a", "noise_b"],
    "categorical": ["segment", "channel"],
}


def cases(files: Path, customers: int) -> list[tuple[str, object, Path]]:
    from lakehouse.byod.example import write_examples
    from lakehouse.byod.profile import Profile, load_profile

    write_examples(files, customers=customers, seed=21)
    write_nonlinear(files / "nonlinear.csv", customers, seed=22)
    snapshot = load_profile(PROJECT_ROOT / "conf/base/byod/acme_customers.yaml")
    balanced = snapshot.model_copy(update={"name": "acme_customers_balanced", "training": snapshot.training.model_copy(
        update={"class_weight": "balanced"})})
    return [("acme_customers (linear signal, planted problems)", snapshot, files / "acme_customers.csv"),
            ("acme_customers, balanced class weights", balanced, files / "acme_customers.csv"),
            ("nonlinear snapshot (thresholds, interaction)", Profile(**NONLINEAR_PROFILE), files / "nonlinear.csv"),
            ("acme_orders (event log, derived label)", load_profile(PROJECT_ROOT / "conf/base/byod/acme_orders.yaml"),
             files / "acme_orders.txt")]


def bench_byod(base: Settings, customers: int, work: Path) -> list[dict]:
    import shutil

    from lakehouse.byod.modeling import PRIOR, plain_name
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.quality.runtime import shutdown_deequ
    from lakehouse.spark import build_session

    os.environ.setdefault(base.quality.pii_key_env, "local-dev-pii-key")
    shutil.rmtree(work, ignore_errors=True)
    (work / "files").mkdir(parents=True)
    settings = load_settings(base.env, overrides={
        "lake": {"root": str(work / "lake")}, "logs_dir": str(work / "logs"),
        "mlflow": {"tracking_uri": f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
                   "artifact_root": str(work / "mlflow" / "artifacts")}})
    spark = build_session(settings, "bench-byod")
    results = []
    try:
        for label, profile, file in cases(work / "files", customers):
            t = time.perf_counter()
            r = run_profile(spark, settings, profile, file, RUN_DATE, work / "out" / profile.name)
            seconds = round(time.perf_counter() - t, 1)
            algos = profile.training.algorithms
            rows = []
            for a in algos:
                tuned, plain = r.metrics.get(a), r.metrics[plain_name(a)]
                rows.append({"algorithm": a, "tuned_auc": tuned and round(tuned["roc_auc"], 4),
                             "tuned_interval": tuned and [round(tuned["roc_auc_low"], 4), round(tuned["roc_auc_high"], 4)],
                             "plain_auc": round(plain["roc_auc"], 4), "tuned_brier": tuned and round(tuned["brier"], 4),
                             "plain_brier": round(plain["brier"], 4),
                             "tuned_ok": tuned is not None and tuned["roc_auc"] >= plain["roc_auc"] - TOLERANCE})
            best_plain = max(r.metrics[plain_name(a)]["roc_auc"] for a in algos)
            results.append({"file": label, "profile": profile.name, "rows": r.rows, "split": r.split["rows"],
                            "class_weight": profile.training.class_weight, "models": rows,
                            "registered": r.best, "registered_auc": round(r.metrics[r.best]["roc_auc"], 4),
                            "registered_brier": round(r.metrics[r.best]["brier"], 4),
                            "prior_brier": round(r.metrics[PRIOR]["brier"], 4),
                            "registered_ok": r.metrics[r.best]["roc_auc"] >= best_plain,
                            "seconds": seconds})
    finally:
        shutdown_deequ(spark)
        spark.stop()
    return results


def table(results: list[dict]) -> list[str]:
    out = ["| file | class weight | algorithm | tuned ROC AUC [95% interval] | plain ROC AUC | tuned - plain | "
           "Brier tuned / plain | registered (AUC, Brier; prior's Brier) | seconds |", "|---" * 9 + "|"]
    for r in results:
        for i, m in enumerate(r["models"]):
            first = i == 0
            tuned = ("-" if m["tuned_auc"] is None else
                     f"{m['tuned_auc']:.4f} [{m['tuned_interval'][0]:.4f}, {m['tuned_interval'][1]:.4f}]")
            diff = "-" if m["tuned_auc"] is None else f"{m['tuned_auc'] - m['plain_auc']:+.4f}"
            brier = f"{'-' if m['tuned_brier'] is None else m['tuned_brier']:} / {m['plain_brier']}"
            out.append(f"| {r['file'] if first else ''} | {r['class_weight'] if first else ''} | {m['algorithm']} | "
                       f"{tuned} | {m['plain_auc']:.4f} | {diff} | {brier} | "
                       + (f"{r['registered']} ({r['registered_auc']:.4f}, {r['registered_brier']}; "
                          f"{r['prior_brier']})" if first else "") + f" | {r['seconds'] if first else ''} |")
    return out


def write_results(results: list[dict], json_path: Path, doc: Path, customers: int) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"measured": dt.date.today().isoformat(), "customers": customers,
                                     "results": results}, indent=2))
    from lakehouse.tools.bench import replace_block

    replace_block(doc, "<!-- bench-byod:start -->", "<!-- bench-byod:end -->", "\n".join(
        [f"Measured {dt.date.today().isoformat()} ({customers} customers per generated file; `lakehouse bench byod`):",
         "", *table(results)]))
