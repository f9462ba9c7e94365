"""The need model wired into training (issue 12, item 3): visits in, one booster out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from training_support import config, spec, xor_table

from safetynet.monitoring.estimates import design_weights as monitoring_weights
from safetynet.training.pipeline import TRUTH_NEED_COLUMN, run
from safetynet.training.visits import design_weights, visit_need_figures

FEATURES = ["x1", "x2", "x3", "x4", "x5", "x6"]


def _table() -> pd.DataFrame:
    """xor table whose need truth has a part (x4 > 1) the entry label never sees."""
    frame = xor_table(n_entities=500, n_periods=16, seed=5)
    need = (frame["p_true"] > 0.7) | (frame["x4"] > 1.2)
    frame[TRUTH_NEED_COLUMN] = need.astype("Int8")
    return frame


def _visits(frame: pd.DataFrame, months: range, per_month: int = 120, seed: int = 0,
            flip: bool = False) -> pd.DataFrame:
    """Visits answered by the truth: the top 40 by x3 listed (p = 1) plus a random audit of
    the rest (p = audits / pool). `flip` answers the opposite (a feedback store that says the
    x4 households are not in need)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in months:
        month = frame[frame["month"] == m]
        listed = month.nlargest(40, "x3")
        pool = month.drop(listed.index)
        audit = pool.sample(per_month - 40, random_state=int(rng.integers(1 << 30)))
        for part, is_audit, p in ((listed, False, 1.0),
                                  (audit, True, (per_month - 40) / len(pool))):
            v = part[["entity", "month", "region", *FEATURES]].copy()
            y = part[TRUTH_NEED_COLUMN].astype(float)
            if flip:
                y = np.where(part["x4"] > 1.2, 0.0, y)
            v["y"] = y
            v["audit"] = is_audit
            v["selection_prob"] = p
            rows.append(v)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def runs():
    frame = _table()
    cfg = config(test_periods=1)
    cfg.fairness = cfg.fairness.model_copy(update={
        "need_audit_attributes": ("region",), "min_group_positives": 5})
    sp = spec(features=FEATURES)
    plain = run(frame, sp, cfg)
    visits = _visits(frame, range(0, 16))
    wired = run(frame, sp, cfg, visits)
    return frame, cfg, sp, visits, plain, wired


def test_without_visits_training_is_unchanged(runs):
    frame, cfg, sp, _, plain, _ = runs
    empty = run(frame, sp, cfg, _visits(frame, range(0, 0)) if False else None)
    assert empty.booster.model_to_string() == plain.booster.model_to_string()
    cold = run(frame, sp, cfg, _visits(frame, range(0, 1), per_month=45))  # 45 visits: too few
    assert cold.booster.model_to_string() == plain.booster.model_to_string()
    assert cold.need_model["need_model_refit_cold_start"] is True
    assert "test_entry_need_precision_at_5pct" not in cold.metrics


def test_with_visits_the_registered_booster_is_entry_plus_visit_trees(runs):
    frame, _, _, _, plain, wired = runs
    assert wired.need_model["need_model_refit_cold_start"] is False
    assert wired.booster.num_trees() > plain.booster.num_trees()
    X = frame[FEATURES].to_numpy(dtype=np.float32)[:300]
    a = wired.need_model["need_model_refit_intercept"]
    b = wired.need_model["need_model_refit_entry_weight"]
    # the plain run's registered entry model is the same refit (same seed, same rows)
    entry = plain.booster.predict(X, raw_score=True)
    combined = wired.booster.predict(X, raw_score=True)
    n_entry = plain.booster.num_trees()
    visit_part = wired.booster.predict(X, raw_score=True, start_iteration=n_entry)
    assert np.allclose(combined, a + b * entry + visit_part, atol=1e-6)
    contrib = wired.booster.predict(X, pred_contrib=True)
    assert np.allclose(contrib.sum(axis=1), combined, atol=1e-6)
    assert wired.metrics["explain_ms_per_row"] <= 0.5


def test_visits_teach_need_and_the_entry_figures_are_kept(runs):
    _, _, _, _, plain, wired = runs
    m = wired.metrics
    assert m["test_entry_need_precision_at_5pct"] == pytest.approx(
        plain.metrics["test_need_precision_at_5pct"])
    assert m["test_need_precision_at_5pct"] > m["test_entry_need_precision_at_5pct"]
    assert m["need_eval_visits"] > 0


def test_visits_of_the_test_period_and_later_are_not_used_for_evaluation(runs):
    frame, cfg, sp, visits, _, wired = runs
    test_start = int(wired.folds[-1]["test_start"])
    before = visits[visits["month"] < test_start]
    assert wired.metrics["need_eval_visits"] == len(before)
    # answers after the test start that say the opposite change the registered model only
    late = _visits(frame, range(test_start, 16), seed=1, flip=True)
    mixed = run(frame, sp, cfg, pd.concat([before, late], ignore_index=True))
    assert mixed.metrics["test_need_precision_at_5pct"] == wired.metrics[
        "test_need_precision_at_5pct"]
    assert mixed.booster.model_to_string() != wired.booster.model_to_string()


def test_design_weights_are_the_estimators():
    rng = np.random.default_rng(0)
    n = 400
    items = pd.DataFrame({
        "as_of_date": pd.to_datetime(rng.choice(["2025-01-01", "2025-02-01"], n)),
        "district": rng.choice(["d1", "d2", "d3"], n),
        "audit": rng.random(n) < 0.4,
    })
    items["selection_prob"] = np.where(items["audit"], 0.05, 1.0)
    items["y"] = np.where(rng.random(n) < 0.1, np.nan, (rng.random(n) < 0.3).astype(float))
    ours = design_weights(items)
    theirs = monitoring_weights(items.rename(columns={"as_of_date": "as_of", "y": "need"})
                                .assign(listed=~items["audit"]))
    assert np.allclose(ours.fillna(-1), theirs.fillna(-1))


def test_visit_need_figures_weight_the_audit_up():
    # 10 listed (all needy) + 10 audited of a pool of 1,000 (p = 0.01, 1 needy of 10)
    visits = pd.DataFrame({
        "as_of_date": pd.Timestamp("2025-01-01"), "district": "d",
        "audit": [False] * 10 + [True] * 10, "selection_prob": [1.0] * 10 + [0.01] * 10,
        "y": [1.0] * 10 + [1.0] + [0.0] * 9, "region": ["a"] * 20})
    visits["weight"] = design_weights(visits)
    listed_first = np.r_[np.arange(20, 10, -1), np.arange(10, 0, -1)].astype(float)
    figs, groups = visit_need_figures(visits, listed_first, 0.0099, ["region"], 1)
    assert figs["precision"] == pytest.approx(1.0)
    assert figs["recall"] == pytest.approx(10 / (10 + 100))
    assert groups.loc[0, "recall"] == pytest.approx(10 / 110)
