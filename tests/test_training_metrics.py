"""Metrics against hand-computed cases (ties included), calibration and the fairness audit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from safetynet.training import metrics as M
from safetynet.training.fairness import audit, flagged_at_capacity, gate_failures
from tests.training_support import config, fairness


def test_precision_at_k_without_ties():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    m = M.at_k(y, s, 3)
    assert m["precision"] == m["precision_worst"] == m["precision_best"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)


def test_precision_at_k_with_ties_worst_best_expected():
    # top 1 strictly above (a positive); then a block of 4 tied scores with 1 positive; k = 3
    y = np.array([1, 1, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.0])
    m = M.at_k(y, s, 3)
    # 2 of the 4 tied rows are taken: worst 0 positives from the block, best 1, expected 2/4
    assert m["precision_worst"] == pytest.approx(1 / 3)
    assert m["precision_best"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx((1 + 0.5) / 3)
    assert m["recall_worst"] == pytest.approx(1 / 3)
    assert m["recall_best"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(1.5 / 3)


def test_all_tied_scores_give_base_rate_in_expectation():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    s = np.zeros(10)
    m = M.at_k(y, s, 5)
    assert m["precision"] == pytest.approx(0.2)
    assert m["precision_worst"] == 0.0
    assert m["precision_best"] == pytest.approx(2 / 5)


def test_expected_matches_random_tie_breaking_by_simulation():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = rng.integers(0, 5, 200).astype(float)  # heavy ties
    m = M.at_k(y, s, 37)
    sims = []
    for _ in range(3000):
        order = np.lexsort((rng.random(200), -s))
        sims.append(y[order[:37]].mean())
    assert np.mean(sims) == pytest.approx(m["precision"], abs=0.005)
    assert m["precision_worst"] <= min(sims) and max(sims) <= m["precision_best"]


def test_k_for_fraction_and_names():
    assert M.k_for_fraction(1000, 0.05) == 50
    assert M.k_for_fraction(101, 0.05) == 6
    assert M.k_for_fraction(10, 0.01) == 1
    assert M.pct_label(0.05) == "5pct" and M.pct_label(0.005) == "0.5pct"
    y = np.array([1, 0] * 50)
    s = np.linspace(1, 0, 100)
    m = M.evaluate(y, s, (0.1,))
    for key in ("roc_auc", "average_precision", "brier", "precision_at_10pct",
                "precision_at_10pct_worst", "precision_at_10pct_best", "recall_at_10pct",
                "lift_at_10pct"):
        assert key in m
    assert m["lift_at_10pct"] == pytest.approx(m["precision_at_10pct"] / 0.5)


def test_grouped_at_k_fixed_count_per_group_with_ties():
    # group a: scores 3,2,2,1 with y 1,1,0,0 ; group b: 5,5,5 with y 0,0,1 ; k = 2 per group
    y = np.array([1, 1, 0, 0, 0, 0, 1])
    s = np.array([3, 2, 2, 1, 5, 5, 5], dtype=float)
    g = np.array(["a", "a", "a", "a", "b", "b", "b"])
    m = M.grouped_at_k(y, s, g, 2)
    # a: 1 above + one of two tied (1 positive) -> worst 1, best 2, expected 1.5
    # b: two of three tied (1 positive) -> worst 0, best 1, expected 2/3
    assert m["k"] == 4
    assert m["precision_worst"] == pytest.approx(1 / 4)
    assert m["precision_best"] == pytest.approx(3 / 4)
    assert m["precision"] == pytest.approx((1.5 + 2 / 3) / 4)
    assert m["recall"] == pytest.approx((1.5 + 2 / 3) / 3)


def test_grouped_at_k_small_group_takes_all():
    y = np.array([1, 0, 1])
    s = np.array([0.1, 0.2, 0.3])
    g = np.array(["a", "a", "b"])
    m = M.grouped_at_k(y, s, g, 5)
    assert m["k"] == 3 and m["precision"] == pytest.approx(2 / 3)


def test_fairness_audit_hand_computed():
    # group F: 4 rows, 2 positives, flagged = 1 TP + 1 FP ; group M: 6 rows, 3 positives, 3 TP
    y = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0])
    f = np.array([1, 0, 1, 0, 1, 1, 1, 0, 0, 0])
    attrs = pd.DataFrame({"sex": ["F"] * 4 + ["M"] * 6})
    t = audit(y, f, attrs, fairness(disparity_low=0.8, disparity_high=1.25,
                                    min_group_positives=1)).set_index("group")
    assert t.at["F", "recall"] == pytest.approx(0.5) and t.at["M", "recall"] == 1.0
    assert t.at["F", "fpr"] == pytest.approx(0.5) and t.at["M", "fpr"] == 0.0
    assert t.at["F", "precision"] == pytest.approx(0.5)
    assert t.at["F", "share_flagged"] == pytest.approx(0.5)
    assert t.at["F", "reference_group"] == "M"  # the largest group
    assert t.at["F", "recall_disparity"] == pytest.approx(0.5)
    assert "recall" in t.at["F", "flags"] and t.at["F", "fails_gate"]
    assert not t.at["M", "fails_gate"]
    assert gate_failures(t.reset_index())[0].startswith("sex=F")
    # the same group below the size threshold is reported but does not fail the gate
    t2 = audit(y, f, attrs, fairness(disparity_low=0.8, disparity_high=1.25,
                                     min_group_positives=5))
    assert not t2["fails_gate"].any() and (t2["flags"] != "").any()


def test_flagged_at_capacity_breaks_ties_reproducibly():
    s = np.array([0.5] * 10 + [0.9])
    a = flagged_at_capacity(s, 0.2, seed=3)
    assert a.sum() == 3 and a[-1]
    np.testing.assert_array_equal(a, flagged_at_capacity(s, 0.2, seed=3))


def test_onset_efficiency_counts_realised_onsets_in_each_top_k():
    from safetynet.training.pipeline import _onset_metrics

    # 20 rows, top 10% = 2 rows. The oracle's truth ranks rows 0, 1 first; the model ranks
    # rows 2, 0 first. Realised onsets: rows 0 and 2. Row 19 has no outcome (window past
    # the simulation) and is left out, even though both rankings put it high.
    truth = np.linspace(0.9, 0.05, 20)
    prob = np.full(20, 0.01)
    prob[[2, 0]] = [0.8, 0.7]
    onset = np.zeros(20)
    onset[[0, 2]] = 1
    onset[19] = np.nan
    truth[19], prob[19] = 0.99, 0.99
    m = _onset_metrics(onset, truth, prob, config(fractions=(0.1,)))
    assert m["test_oracle_onset_precision_at_10pct"] == 0.5  # rows 0, 1: one onset
    assert m["test_onset_precision_at_10pct"] == 1.0  # rows 2, 0: two onsets
    assert m["test_onset_efficiency_at_10pct"] == 2.0
