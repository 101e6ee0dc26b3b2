"""Evaluation of churn probabilities: ranking quality, the business-optimal threshold, plots.

Everything is computed from predicted probabilities (never hard predictions) of the out-of-time
evaluation rows, collected to the driver (tens of thousands of rows at most).
"""

from __future__ import annotations

import numpy as np


def probabilities(model, frame) -> tuple[np.ndarray, np.ndarray]:
    """(labels, churn probabilities) of a fitted pipeline ``model`` on ``frame``'s rows, on the driver
    (collected as Arrow batches: evaluation rows run to the hundreds of thousands)."""
    from pyspark.ml.functions import vector_to_array

    from lakehouse.spark import session_conf

    with session_conf(frame.sparkSession, {"spark.sql.execution.arrow.pyspark.enabled": "true"}):
        rows = (model.transform(frame).select("label", vector_to_array("probability")[1].alias("p")).toPandas())
    return rows["label"].to_numpy(dtype=int), rows["p"].to_numpy(dtype=float)


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if y.sum() > 0 else float("nan")


def expected_value(y: np.ndarray, p: np.ndarray, t: float, offer_cost: float, saved_value: float,
                   success_rate: float) -> float:
    """Value of offering retention to everyone with p >= t: churners kept minus what the offers cost."""
    targeted = p >= t
    return float((y[targeted].sum() * success_rate * saved_value) - targeted.sum() * offer_cost)


def best_threshold(y, p, costs) -> tuple[float, float]:
    """The threshold maximizing expected value, over the distinct predicted probabilities."""
    candidates = np.unique(np.quantile(p, np.linspace(0, 1, 201)))
    values = [expected_value(y, p, t, costs.offer_cost, costs.saved_customer_value, costs.offer_success_rate)
              for t in candidates]
    i = int(np.argmax(values))
    if values[i] <= 0:  # no threshold pays for its offers: target nobody
        return float(np.nextafter(max(1.0, float(np.max(p))), np.inf)), 0.0
    return float(candidates[i]), float(values[i])


def rate_threshold(p: np.ndarray, rate: float) -> float:
    """The threshold that contacts the ``rate`` share of rows with the highest scores."""
    return float(np.quantile(p, 1 - rate, method="higher"))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between the probability and the outcome (0 is perfect; a constant equal
    to the base rate b scores b(1-b))."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2)) if len(y) else float("nan")


def auc_interval(y: np.ndarray, p: np.ndarray, rounds: int = 500, seed: int = 7,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC AUC over the evaluation rows (resampled with
    replacement, stratified by class so every resample has both)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if not len(pos) or not len(neg):
        return float("nan"), float("nan")
    # AUC = P(a churner scores above a stayer), ties counting half. Each round draws multiplicities of
    # the churners (w) and of the stayers' distinct scores (v); for a churner, the stayers below its
    # score are a cumulative sum of v, so a round costs O(rows), not a sort
    values, neg_index = np.unique(p[neg], return_inverse=True)
    left = np.searchsorted(values, p[pos], "left")
    tie = (left < len(values)) & (values[np.minimum(left, len(values) - 1)] == p[pos])
    rng = np.random.default_rng(seed)
    aucs = np.empty(rounds)
    for i in range(rounds):
        w = np.bincount(rng.integers(0, len(pos), len(pos)), minlength=len(pos))
        v = np.bincount(neg_index[rng.integers(0, len(neg), len(neg))], minlength=len(values))
        below = np.concatenate([[0], np.cumsum(v)])[left]
        equal = np.where(tie, v[np.minimum(left, len(values) - 1)], 0)
        aucs[i] = float(np.dot(w, below + 0.5 * equal)) / (len(pos) * len(neg))
    alpha = (1 - level) / 2
    return float(np.quantile(aucs, alpha)), float(np.quantile(aucs, 1 - alpha))


def evaluate(y: np.ndarray, p: np.ndarray, costs, contact_rate: float | None = None, seed: int = 7) -> dict[str, float]:
    """Ranking (ROC AUC with its bootstrap interval, ``auc_interval``), calibration and decision metrics of
    probabilities ``p`` for outcomes ``y``. The threshold maximizes expected value under ``costs``, or,
    with ``contact_rate``, contacts that share of rows."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if contact_rate is not None:
        t = rate_threshold(p, contact_rate) if len(p) else 1.0
        value = (expected_value(y, p, t, costs.offer_cost, costs.saved_customer_value, costs.offer_success_rate)
                 if costs is not None else float("nan"))
    else:
        t, value = best_threshold(y, p, costs)
    pred = p >= t
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, len(p) // 10)]
    base_rate = y.mean() if len(y) else 0.0
    captured = y[top].sum()
    low, high = auc_interval(y, p, seed=seed)
    return {
        "roc_auc": roc_auc(y, p), "roc_auc_low": low, "roc_auc_high": high, "pr_auc": pr_auc(y, p),
        "threshold": t, "expected_value": value,
        "accuracy": (tp + tn) / len(y) if len(y) else 0.0,
        "precision": precision, "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "lift_top_decile": float(y[top].mean() / base_rate) if base_rate else float("nan"),
        "capture_top_decile": float(captured / y.sum()) if y.sum() else float("nan"),
        "brier": brier(y, p), "contacted": int(pred.sum()),
        "base_rate": float(base_rate), "rows": int(len(y)), "positives": int(y.sum()),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


def plots(y, p, m: dict, importances: list[tuple[str, float]], title: str, out_dir) -> list:
    """ROC, PR, calibration, confusion matrix and feature importance PNGs; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(fig, name):
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)

    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"AUC {m['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
    ax.legend(loc="lower right")
    save(fig, "roc.png")

    prec, rec, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(rec, prec, label=f"AP {m['pr_auc']:.3f}")
    ax.axhline(m["base_rate"], ls="--", c="grey", label=f"base rate {m['base_rate']:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall: {title}")
    ax.legend()
    save(fig, "pr.png")

    frac, mean_p = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(mean_p, frac, marker="o")
    lim = max(float(np.max(mean_p)), float(np.max(frac)), 0.05)
    ax.plot([0, lim], [0, lim], ls="--", c="grey")
    ax.set(xlabel="mean predicted probability", ylabel="observed churn rate", title=f"Calibration: {title}")
    save(fig, "calibration.png")

    fig, ax = plt.subplots(figsize=(4, 3.6))
    cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["stay", "churn"], yticklabels=["stay", "churn"],
           xlabel="predicted", ylabel="actual", title=f"Threshold {m['threshold']:.3f}")
    save(fig, "confusion_matrix.png")

    top = sorted(importances, key=lambda kv: -abs(kv[1]))[:15][::-1]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set(title=f"Feature importance: {title}", xlabel="importance (|coef| for LR)")
    save(fig, "feature_importance.png")
    return paths
