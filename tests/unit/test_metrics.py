"""Evaluation metrics of churn probabilities: the bootstrap interval of the ROC AUC, the Brier score,
the contact-rate threshold (no Spark)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lakehouse.config import CostConfig
from lakehouse.ml import metrics as M


def _scores(n=4000, seed=1):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    p = np.round(np.clip(0.2 + 0.2 * y + rng.normal(0, 0.2, n), 0, 1), 2)  # rounded: many ties
    return y, p


def test_each_bootstrap_round_is_the_auc_of_its_resample():
    """One round with the interval collapsed to it equals scikit-learn's AUC of the same resample,
    drawn the way auc_interval draws it (churners, then stayers), ties included."""
    y, p = _scores()
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    low, high = M.auc_interval(y, p, rounds=1, seed=3, level=0.0)
    rng = np.random.default_rng(3)
    drawn_pos, drawn_neg = rng.integers(0, len(pos), len(pos)), rng.integers(0, len(neg), len(neg))
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    assert low == high == pytest.approx(roc_auc_score(labels, np.r_[p[pos][drawn_pos], p[neg][drawn_neg]]))


def test_the_interval_holds_the_auc_and_narrows_with_more_rows():
    small, large = _scores(800), _scores(20000)
    widths = []
    for y, p in (small, large):
        low, high = M.auc_interval(y, p)
        assert low < M.roc_auc(y, p) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2
    y, _ = small
    assert M.auc_interval(y, np.full(len(y), 0.3)) == (0.5, 0.5)  # a constant ranks nobody
    assert np.isnan(M.auc_interval(np.zeros(10, dtype=int), np.linspace(0, 1, 10))[0])


def test_brier_score_and_the_contact_rate_threshold():
    y, p = _scores()
    rate = y.mean()
    assert M.brier(y, np.full(len(y), rate)) == pytest.approx(rate * (1 - rate))
    assert M.brier(y, y.astype(float)) == 0.0
    costs = CostConfig(offer_cost=10, saved_customer_value=200, offer_success_rate=0.3)
    m = M.evaluate(y, p, costs, contact_rate=0.1)
    assert m["contacted"] == int((p >= m["threshold"]).sum()) and 0.1 * len(y) <= m["contacted"] <= 0.12 * len(y)
    assert m["expected_value"] == pytest.approx(M.expected_value(y, p, m["threshold"], 10, 200, 0.3))
    assert m["roc_auc_low"] < m["roc_auc"] < m["roc_auc_high"]
    assert np.isnan(M.evaluate(y, p, None, contact_rate=0.1)["expected_value"])  # a rate without costs
