"""training/need_model.py: the entry model combined with a visit/audit model on log-odds."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from safetynet.training.need_model import (
    NeedModel,
    fit_need_model,
    fit_visit_booster,
    leaf_budget_for,
    selection_weights,
)

FAST = {"params": {"num_threads": 1}, "max_rounds": 150, "n_folds": 3}


def _world(n: int = 3000, seed: int = 0):
    """Features; 'applies' depends on x0 (the entry label), 'need' on x0 and x1 (visits)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    need_logit = -1.5 + 1.2 * X[:, 0] + 1.5 * X[:, 1]
    need = rng.random(n) < 1 / (1 + np.exp(-need_logit))
    entry_label = need & (X[:, 1] < 0) & (rng.random(n) < 0.6)  # x1-high need never applies
    entry = lgb.train({"objective": "binary", "num_leaves": 4, "verbosity": -1, "seed": 0,
                       "num_threads": 1}, lgb.Dataset(X, entry_label.astype(float)), 40)
    return X, need.astype(float), entry


@pytest.mark.parametrize("method", ["offset", "stack"])
def test_contributions_add_up_to_the_combined_margin(method):
    X, need, entry = _world()
    p = np.full(len(X), 0.5)
    model = fit_need_model(entry.predict(X, raw_score=True), X, need, p, method=method,
                           seed=1, **FAST)
    assert not model.cold_start
    Xn = X[:200]
    contrib = model.contributions(entry.predict(Xn, pred_contrib=True), Xn)
    margin = model.margin(entry.predict(Xn, raw_score=True), Xn)
    assert contrib.shape == (200, X.shape[1] + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), margin, atol=1e-6)


@pytest.mark.parametrize("method", ["offset", "stack"])
def test_merged_booster_serves_the_combination_as_one_booster(method):
    X, need, entry = _world()
    model = fit_need_model(entry.predict(X, raw_score=True), X, need, np.ones(len(X)),
                           method=method, seed=2, **FAST)
    merged = model.merged_booster(entry)
    Xn = X[:300]
    np.testing.assert_allclose(merged.predict(Xn, raw_score=True),
                               model.margin(entry.predict(Xn, raw_score=True), Xn), atol=1e-9)
    np.testing.assert_allclose(merged.predict(Xn, pred_contrib=True),
                               model.contributions(entry.predict(Xn, pred_contrib=True), Xn),
                               atol=1e-9)
    assert merged.num_trees() == entry.num_trees() + model.visit_booster.num_trees()


def test_visits_teach_the_need_the_entry_label_misses():
    X, need, entry = _world(6000)
    z = entry.predict(X, raw_score=True)
    model = fit_need_model(z[:4000], X[:4000], need[:4000], np.ones(4000), seed=0, **FAST)
    held = slice(4000, None)

    def top_precision(score):
        top = np.argsort(-score)[:200]
        return need[held][top].mean()

    assert top_precision(model.margin(z[held], X[held])) > top_precision(z[held]) + 0.1


def test_weighting_by_selection_probability_recovers_the_population_rate():
    rng = np.random.default_rng(3)
    n_listed, n_audit = 600, 600
    X = rng.normal(size=(n_listed + n_audit, 3)).astype(np.float32)  # uninformative
    y = np.r_[rng.random(n_listed) < 0.8, rng.random(n_audit) < 0.1].astype(float)
    p = np.r_[np.ones(n_listed), np.full(n_audit, 0.05)]  # audit: 1 in 20 of the unlisted
    z = rng.normal(scale=0.01, size=len(y))
    weighted = fit_need_model(z, X, y, p, weighted=True, seed=0, **FAST)
    plain = fit_need_model(z, X, y, p, weighted=False, seed=0, **FAST)
    # the cohort: 600 listed + 12,000 unlisted -> (480 + 1200) / 12,600 = 0.133 in hardship
    w = 1 / p
    rate = np.average(y, weights=w)
    assert rate == pytest.approx(0.133, abs=0.02)
    assert np.average(weighted.predict_proba(z, X), weights=w) == pytest.approx(rate, abs=0.03)
    assert np.average(plain.predict_proba(z, X), weights=w) > rate + 0.15


def test_selection_weights_are_inverse_probabilities_scaled_to_mean_one():
    w = selection_weights(np.array([1.0, 0.5, 0.1]))
    np.testing.assert_allclose(w / w[0], [1, 2, 10])
    assert w.mean() == pytest.approx(1.0)
    for bad in ([0.0, 1.0], [1.2], [np.nan]):
        with pytest.raises(ValueError, match="selection_prob"):
            selection_weights(np.array(bad))


@pytest.mark.parametrize("n_visits, one_class", [(0, False), (20, False), (500, True)])
def test_cold_start_leaves_the_entry_model_unchanged(n_visits, one_class):
    X, need, entry = _world()
    y = np.zeros(n_visits) if one_class else need[:n_visits]
    model = fit_need_model(entry.predict(X[:n_visits], raw_score=True), X[:n_visits], y,
                           np.ones(n_visits), **FAST)
    assert model.cold_start and model.info["cold_start"]
    np.testing.assert_array_equal(model.margin(entry.predict(X, raw_score=True), X),
                                  entry.predict(X, raw_score=True))
    phi = entry.predict(X[:50], pred_contrib=True)
    np.testing.assert_array_equal(model.contributions(phi, X[:50]), phi)
    np.testing.assert_allclose(model.merged_booster(entry).predict(X, raw_score=True),
                               entry.predict(X, raw_score=True), atol=1e-12)


def test_leaf_budget_caps_the_visit_booster():
    X, need, _ = _world()
    booster = fit_visit_booster(X, need, np.ones(len(X)), leaf_budget=70, seed=0, **FAST)
    assert NeedModel(visit_booster=booster).leaves() <= 70
    assert leaf_budget_for(0.15) == int(0.15e6 / 86)


def test_bad_inputs_are_refused():
    X, need, entry = _world(200)
    z = entry.predict(X, raw_score=True)
    with pytest.raises(ValueError, match="method"):
        fit_need_model(z, X, need, np.ones(200), method="average")
    with pytest.raises(ValueError, match="0/1"):
        fit_need_model(z, X, need * 2, np.ones(200))
    with pytest.raises(ValueError, match="rows"):
        fit_need_model(z[:10], X, need, np.ones(200))
    with pytest.raises(ValueError, match="finite"):
        fit_need_model(np.full(200, np.nan), X, need, np.ones(200))
    with pytest.raises(ValueError, match="n_features"):
        NeedModel().contributions(np.zeros((5, 2)), X[:5])
