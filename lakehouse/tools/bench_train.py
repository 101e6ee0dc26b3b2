"""Training cost per algorithm against the size of the training set (``lakehouse bench train``).

Per scale (customers x labelled dates), on a temporary lake:
  1. synthetic gold snapshots and labels (``lakehouse.tools.synthetic``: a known churn mechanism) written
     through the real DDL: set-up, timed but not the point;
  2. the training set as ``jobs/train.py`` builds it: labels joined with point-in-time features from
     the feature store (``build_training_set``), split out of time and weighted (``weighted_split``);
  3. per algorithm of ``model.algorithms`` (sizes from ``model.sizes``): one fit of the whole pipeline
     (preprocessing stages + classifier) with the first candidate of its ``model.grid``, then the
     evaluation dates scored (probabilities to the driver, ROC AUC: the check that it learned);
  4. up to ``cv_max_rows`` training rows, also the cross-validated fit as training runs it
     (``cross_validate``: every candidate on every fold, the best refitted).

The first scale starts with one untimed fit of each algorithm on ``WARM_UP_ROWS`` of its rows (the
JVM's compilers warm up there, not in the first timed fit). Wall seconds, training rows per second,
and the peak resident memory of Python + the Spark JVM (``PeakMemory``) for each. Writes JSON and
Markdown; asserts nothing about speed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.tools.bench import _save_json, _scratch_lake, _write_table, machine
from lakehouse.tools.bench_features import PeakMemory

log = logging.getLogger(__name__)
FIRST_DAY = dt.date(2026, 2, 1)
WARM_UP_ROWS = 2000


def _timed(fn):
    """(fn's result, wall seconds, PeakMemory of the call)."""
    with PeakMemory() as mem:
        t = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t
    return out, seconds, mem


def bench_train(settings: Settings, customers: list[int], dates: int, out_json: Path, out_md: Path,
                cv_max_rows: int = 1_000_000, spark_memory: str = "6g", spark=None,
                cv_parallelism: list[int] | None = None) -> list[dict]:
    from lakehouse.ml import metrics as M
    from lakehouse.ml import preprocess
    from lakehouse.ml.dataset import build_training_set
    from lakehouse.ml.metrics import probabilities
    from lakehouse.ml.train import classifier, cross_validate, split_dates, weighted_split
    from lakehouse.tools import synthetic

    cfg = settings.model
    parallelisms = cv_parallelism or [cfg.cv_parallelism]
    if min(parallelisms) < 1:
        raise LakehouseError(f"cv parallelism must be 1 or more, not {min(parallelisms)}")
    results: list[dict] = []
    with _scratch_lake(settings, "train", spark, {"spark.driver.memory": spark_memory},
                       model={"snapshot_every_days": 1}) as (run, spark, _):
        for n in customers:
            written, write_s, _ = _timed(lambda: synthetic.write(spark, run, FIRST_DAY, dates, customers=n, seed=5,
                                                                 horizon=run.gold.label_horizon_days))
            until = written[-1] + dt.timedelta(days=run.gold.label_horizon_days)

            def training_set():
                ts = build_training_set(spark, run, until, dates=written)
                frame = ts.frame.cache()
                frame.count()
                return ts, frame

            (ts, frame), ts_s, ts_mem = _timed(training_set)
            train_dates, eval_dates = split_dates(ts.dates, cfg.eval_fraction)
            train, evaluation, rows, _ = weighted_split(frame, train_dates, eval_dates)
            base = {"customers": n, "dates": dates, "train_rows": rows["train"], "eval_rows": rows["eval"],
                    "features": len(ts.feature_columns)}
            results.append({**base, "step": "training set (labels + point-in-time features)", "algorithm": "",
                            "seconds": round(ts_s, 2), "rows_per_s": round((rows["train"] + rows["eval"]) / ts_s),
                            "peak_mib": ts_mem.mib, "rise_mib": ts_mem.rise_mib, "roc_auc": None,
                            "setup_write_s": round(write_s, 2)})
            log.info("bench train %d customers: %s", n, results[-1])
            if n == customers[0]:  # warm the session up: one untimed fit of each on a slice of the rows
                for algo in cfg.algorithms:
                    clf, grid = classifier(algo, cfg.seed, cfg.sizes, cfg.grid)
                    preprocess.pipeline(ts.numeric, ts.categorical, clf).fit(train.limit(WARM_UP_ROWS), grid[0])
            for algo in cfg.algorithms:
                clf, grid = classifier(algo, cfg.seed, cfg.sizes, cfg.grid)
                estimator = preprocess.pipeline(ts.numeric, ts.categorical, clf)
                model, fit_s, fit_mem = _timed(lambda: estimator.fit(train, grid[0]))
                (y, p), score_s, _ = _timed(lambda: probabilities(model, evaluation))
                auc = M.evaluate(y, p, cfg.costs)["roc_auc"]
                results.append({**base, "step": "fit (one candidate)", "algorithm": algo,
                                "candidate": {k.name: v for k, v in grid[0].items()}, "seconds": round(fit_s, 2),
                                "rows_per_s": round(rows["train"] / fit_s), "peak_mib": fit_mem.mib,
                                "rise_mib": fit_mem.rise_mib, "roc_auc": round(auc, 4),
                                "score_s": round(score_s, 2), "score_rows_per_s": round(rows["eval"] / score_s)})
                log.info("bench train %d customers %s: %s", n, algo, results[-1])
                for par in parallelisms if rows["train"] <= cv_max_rows else []:
                    (cv_model, _), cv_s, cv_mem = _timed(lambda: cross_validate(
                        train, ts.numeric, ts.categorical, algo, cfg.cv_folds, cfg.seed, cfg.sizes, cfg.grid, par))
                    results.append({**base, "step": f"cross-validated ({cfg.cv_folds} folds, {len(grid)} "
                                                    f"candidate(s), {par} at a time, best refitted)",
                                    "algorithm": algo, "cv_parallelism": par,
                                    "seconds": round(cv_s, 2), "rows_per_s": round(rows["train"] / cv_s),
                                    "peak_mib": cv_mem.mib, "rise_mib": cv_mem.rise_mib,
                                    "roc_auc": round(M.evaluate(*probabilities(cv_model.bestModel, evaluation),
                                                                cfg.costs)["roc_auc"], 4)})
                    log.info("bench train %d customers %s: %s", n, algo, results[-1])
            for df in (frame, train, evaluation):
                df.unpersist()
    _save_json(out_json, results)
    blank = {"score_s": "", "score_rows_per_s": "", "roc_auc": "", "algorithm": ""}
    _write_table(out_md, _intro(settings, dates, cv_max_rows), COLUMNS,
                 [{**blank, **{k: v for k, v in r.items() if v is not None}} for r in results])
    return results


COLUMNS = {"customers": "customers", "training rows": "train_rows", "evaluation rows": "eval_rows",
           "step": "step", "algorithm": "algorithm", "seconds": "seconds", "training rows/s": "rows_per_s",
           "peak MiB": "peak_mib", "rise MiB": "rise_mib", "evaluation ROC AUC": "roc_auc",
           "scoring s (evaluation rows)": "score_s", "scored rows/s": "score_rows_per_s"}


def _intro(settings: Settings, dates: int, cv_max_rows: int) -> list[str]:
    m = settings.model
    return ["# Training benchmark", "",
            f"Machine: {machine()}. Measured by `lakehouse bench train`: Spark local, one warm session, one run "
            "of each step (differences under ~10 % are noise).", "",
            f"Data: synthetic gold snapshots and labels with a known churn mechanism (`lakehouse.tools.synthetic`) "
            f"for {dates} dates, every date labelled; the out-of-time split keeps the last {m.eval_fraction:.0%} "
            "of dates for evaluation. The training set is built as `jobs/train.py` builds it: labels joined with "
            "point-in-time features from the feature store, the positive class weighted.", "",
            f"*fit (one candidate)*: the whole pipeline (preprocessing stages + classifier) fitted once on the "
            f"training rows with the first candidate of `model.grid`; forest {m.sizes.forest_trees} trees, "
            f"boosting {m.sizes.boosting_rounds} rounds (`model.sizes`). *cross-validated*: what training runs "
            f"per algorithm, every candidate on every one of {m.cv_folds} folds (so many at a time, "
            f"`model.cv_parallelism`: {m.cv_parallelism} here) and the best refitted; measured "
            f"up to {cv_max_rows:,} training rows. The ROC AUC is on the evaluation dates (the check that "
            "the model learned the mechanism). Peak: resident memory of Python + the Spark JVM during the "
            "step; rise: above the step's start.", ""]
