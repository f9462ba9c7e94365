"""Explanations that are right: LightGBM's pred_contrib against shap.TreeExplainer, additivity,
reason ranking and programme rules (pure functions, no server). The bundle's prediction and
tiers: tests/test_model.py."""

from __future__ import annotations

import numpy as np
import pytest
from serving_fixtures import make_data, model_features, train_booster

from safetynet.config import load_policy
from safetynet.features.definitions import feature_texts
from safetynet.serving.explain import top_reasons
from safetynet.serving.programs import load_rules, match_programmes


@pytest.fixture(scope="module")
def model():
    features = model_features()
    booster = train_booster(features, rounds=60)
    X, _ = make_data(features, 300, seed=3)
    return features, booster, X


def test_pred_contrib_equals_shap_tree_explainer(model):
    import shap

    _features, booster, X = model
    contrib = booster.predict(X, pred_contrib=True)
    explainer = shap.TreeExplainer(booster)
    values = explainer.shap_values(X)
    values = values[1] if isinstance(values, list) else values
    np.testing.assert_allclose(contrib[:, :-1], values, atol=1e-6)
    base = np.ravel(explainer.expected_value)[-1]
    np.testing.assert_allclose(contrib[:, -1], base, atol=1e-6)


def test_contributions_plus_base_reproduce_raw_output(model):
    _features, booster, X = model
    contrib = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(X, raw_score=True),
                               atol=1e-9)


def test_top_reasons_are_the_largest_positive_contributions(model):
    features, booster, X = model
    contrib = booster.predict(X, pred_contrib=True)
    texts = feature_texts(features)
    reasons = top_reasons(contrib, X, features, texts, k=5, lang="en")
    for i, row in enumerate(reasons):
        phi = contrib[i, :-1]
        expected = [features[j] for j in np.argsort(-phi)[:5] if phi[j] > 0]
        assert [r["feature"] for r in row] == expected
        for r in row:
            j = features.index(r["feature"])
            assert r["contribution"] == pytest.approx(phi[j])
            assert (r["value"] is None and np.isnan(X[i, j])) or r["value"] == X[i, j]


def test_programme_rules_are_declarative_and_vectorised():
    rules = load_rules(load_policy().replace(programmes={
        "dibao": {"name_en": "Dibao", "name_zh": "低保",
                  "all": [["income_per_capita", "<", 900], ["on_dibao", "==", 0]]},
        "edu": {"name_en": "Edu", "name_zh": "教育",
                "any": [["dropouts_12m", ">", 0], ["absence_days_3m", ">=", 10]]},
    }).programmes)
    cols = {"income_per_capita": np.array([500.0, 500.0, np.nan, 2000.0]),
            "on_dibao": np.array([0.0, 1.0, 0.0, 0.0]),
            "dropouts_12m": np.array([0.0, 1.0, 0.0, np.nan]),
            "absence_days_3m": np.array([12.0, 0.0, 0.0, 3.0])}
    out = match_programmes(rules, cols, 4, lang="zh")
    assert [[p["programme_id"] for p in row] for row in out] == [
        ["dibao", "edu"], ["edu"], [], []]
    assert out[0][0]["name"] == "低保"
    assert out[0][1]["facts"] == [{"feature": "absence_days_3m", "op": ">=", "threshold": 10.0,
                                   "value": 12.0}]


def test_malformed_programme_rule_is_refused():
    policy = load_policy()
    with pytest.raises(ValueError, match="condition"):
        policy.replace(programmes={"x": {"name_en": "X", "name_zh": "X",
                                         "all": [["a", "~", 1]]}})
    with pytest.raises(ValueError, match="no conditions"):
        policy.replace(programmes={"x": {"name_en": "X", "name_zh": "X"}})


def test_shipped_policy_programmes_use_real_feature_names():
    from safetynet.features.definitions import FEATURES_BY_NAME

    rules = load_rules(load_policy().programmes)
    assert {r.programme_id for r in rules} >= {
        "dibao", "medical_assistance", "education_assistance", "temporary_assistance",
        "employment_assistance", "disability_subsidies"}
    unknown = {f for r in rules for f in r.features()} - set(FEATURES_BY_NAME)
    assert not unknown


def _by_row_with_compute_indicators(as_of, rows, policy):
    """The pandas path (`compute_indicators` on a frame of the rows) in the by-row shape."""
    import json

    import pandas as pd

    from safetynet.features.definitions import output_columns
    from safetynet.features.indicators import compute_indicators

    frame = pd.DataFrame.from_records(list(rows))
    frame = frame.reindex(columns=sorted(set(frame.columns) | set(output_columns())))
    frame["household_key"] = [f"#{i}" for i in range(len(rows))]
    frame["as_of_date"] = list(as_of)
    found = compute_indicators(frame, policy)
    out = [[] for _ in rows]
    trig = found["triggered_on"].astype(str).str[:10].where(found["triggered_on"].notna(), None)
    for pos, ind, when, evidence in zip(
        found["household_key"].str[1:].astype(int), found["indicator_id"].astype(str),
        trig, found["evidence"], strict=True,
    ):
        out[pos].append({"indicator_id": ind, "triggered_on": when,
                         "evidence": json.loads(evidence)})
    return out


def test_numpy_indicators_agree_with_compute_indicators():
    from serving_fixtures import household_rows

    from safetynet.features.definitions import model_feature_names
    from safetynet.features.indicators import indicators_by_row

    policy = load_policy()
    rows = list(household_rows(list(model_feature_names()), 300, seed=4).values())
    rng = np.random.default_rng(0)
    for r in rows:  # exercise the date, "== 0" and ".fillna" branches too
        r["last_serious_claim_date"] = "2026-09-01" if rng.random() < 0.5 else None
        r["months_since_left_assistance"] = float(rng.integers(0, 30))
        r["on_any_assistance"] = float(rng.integers(0, 2))
        r["household_size"] = float(rng.integers(1, 3))
        r["oldest_member_age"] = float(rng.integers(50, 90))
        r["current_unemployment_months"] = None if rng.random() < 0.3 else 2.0
    as_of = ["2026-10-31"] * len(rows)
    fast = indicators_by_row(rows, as_of, policy.indicators)
    slow = _by_row_with_compute_indicators(as_of, rows, policy.indicators)
    assert sum(map(len, fast)) > 100
    assert fast == slow


def test_programme_matching_small_and_large_batches_agree():
    rules = load_rules(load_policy().programmes)
    rng = np.random.default_rng(1)
    names = sorted({f for r in rules for f in r.features()})
    cols = {f: np.where(rng.random(40) < 0.1, np.nan, rng.integers(0, 3, 40) * 700.0)
            for f in names}
    big = match_programmes(rules, cols, 40)
    small = [match_programmes(rules, {f: c[i:i + 1] for f, c in cols.items()}, 1)[0]
             for i in range(40)]
    assert big == small and sum(map(len, big)) > 10
