"""The model ground floor (`safetynet.model`): the bundle's two prediction paths, calibration,
tiers and reason ranking, and that serving, monitoring and training agree on them."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from monitoring_support import POLICY
from serving_fixtures import make_data, model_features, train_booster
from sklearn.calibration import calibration_curve

from safetynet.config import load_policy
from safetynet.model import (
    TIER_ORDER,
    Bundle,
    Calibrator,
    tier_rank,
    tiers_of,
    top_contributions,
)
from safetynet.training.calibration import reliability_curve


@pytest.fixture(scope="module")
def model():
    features = model_features()
    booster = train_booster(features, rounds=60)
    X, _ = make_data(features, 300, seed=3)
    return features, booster, X


def _bundle(booster, features, calibrator: dict | None = None) -> Bundle:  # type: ignore[no-untyped-def]
    cal = Calibrator.from_dict(calibrator or {"method": "identity"})
    return Bundle(booster, features, cal, "m", "1", "champion")


def test_served_probability_is_the_calibrated_sigmoid_of_the_raw_output(model):
    features, booster, X = model
    bundle = Bundle(booster, features, Calibrator.from_dict({"method": "identity"}),
                    "m", "1", "champion")
    prob, _contrib = bundle.predict(X)
    np.testing.assert_allclose(prob, booster.predict(X), atol=1e-12)
    iso = {"method": "isotonic", "x_thresholds": [0, 0.5, 1], "y_thresholds": [0, 0.2, 1]}
    bundle.calibrator = Calibrator.from_dict(iso)
    prob2, _ = bundle.predict(X)
    np.testing.assert_allclose(prob2, np.interp(booster.predict(X), [0, .5, 1], [0, .2, 1]))


def test_predict_proba_is_predict_without_contributions_in_any_chunking(model):
    features, booster, X = model
    bundle = _bundle(booster, features, {"method": "platt", "a": 1.1, "b": -0.2})
    prob, contrib = bundle.predict(X)
    assert contrib.shape == (len(X), len(features) + 1)
    np.testing.assert_allclose(bundle.predict_proba(X), prob, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(bundle.predict_proba(X, chunk_rows=7), bundle.predict_proba(X))
    assert bundle.predict_proba(X[:0]).shape == (0,)
    with pytest.raises(ValueError, match="feature"):
        bundle.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match="feature columns"):
        bundle.predict(X[:, :3])


def test_calibration_isotonic_and_platt_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.random(5000)
    y = (rng.random(5000) < raw**2).astype(float)  # raw is over-confident: true p = raw^2
    for method in ("isotonic", "platt"):
        cal = Calibrator.fit(raw, y, method)
        path = tmp_path / f"{method}.json"
        cal.to_json(path)
        back = Calibrator.from_json(path)
        np.testing.assert_allclose(back.transform(raw), cal.transform(raw))
        p = cal.transform(raw)
        assert abs(p.mean() - y.mean()) < 0.02  # calibrated in the large
        assert np.all(np.diff(back.transform(np.linspace(0, 1, 50))) >= -1e-12)  # monotone
    assert Calibrator.fit(raw, y, "auto", min_isotonic_positives=10).method == "isotonic"
    assert Calibrator.fit(raw[:50], y[:50], "auto").method == "platt"


def test_reliability_curve_is_sklearns_quantile_curve_with_counts():
    rng = np.random.default_rng(1)
    prob = np.round(rng.random(3000), 2)  # ties on the bin edges too
    y = (rng.random(3000) < prob).astype(int)
    mean_p, rate, count = reliability_curve(prob, y, n_bins=10)
    want_rate, want_p = calibration_curve(y, prob, n_bins=10, strategy="quantile")
    np.testing.assert_array_equal(mean_p, want_p)
    np.testing.assert_array_equal(rate, want_rate)
    assert count.sum() == len(prob) and (count > 0).all() and len(count) == len(mean_p)
    # without ties: deciles of 300 rows each, means as computed by hand
    prob = rng.random(3000)
    mean_p, _, count = reliability_curve(prob, (prob > 0.5).astype(int), n_bins=10)
    assert count.tolist() == [300.0] * 10
    by_hand = np.sort(prob).reshape(10, 300).mean(axis=1)
    np.testing.assert_allclose(mean_p, by_hand)


def test_tiers_follow_policy_thresholds():
    tiers = load_policy().tiers.thresholds()
    p = np.array([0.0, tiers["yellow"], tiers["orange"] - 1e-9, tiers["orange"], 0.99])
    assert tiers_of(p, tiers).tolist() == ["green", "yellow", "yellow", "orange", "red"]


def test_tiers_of_equals_np_select_and_ranks_follow_urgency():
    tiers = load_policy().tiers.thresholds()
    p = np.random.default_rng(2).random(2000) ** 3
    ordered = sorted(tiers.items(), key=lambda kv: kv[1], reverse=True)
    want = np.select([p >= t for _, t in ordered], [n for n, _ in ordered], default="green")
    np.testing.assert_array_equal(tiers_of(p, tiers), want)
    assert tier_rank(np.array(list(TIER_ORDER))).tolist() == [0, 1, 2, 3]
    assert tier_rank(pd.Series(["red", None, "purple"])).tolist() == [3, -1, -1]


def test_top_contributions_rank_the_largest_first(model):
    features, booster, X = model
    contrib = booster.predict(X, pred_contrib=True)
    idx, val = top_contributions(contrib, 5)
    assert idx.shape == val.shape == (len(X), 5)
    for i in range(len(X)):
        phi = contrib[i, :-1]
        assert idx[i].tolist() == np.argsort(-phi, kind="stable")[:5].tolist()
        np.testing.assert_array_equal(val[i], phi[idx[i]])
    all_idx, _ = top_contributions(contrib, 10_000)  # k beyond the feature count: all of them
    assert all_idx.shape == (len(X), len(features))
    assert top_contributions(contrib[:0], 5)[0].shape == (0, 0)
    assert top_contributions(contrib, 0)[0].shape == (len(X), 0)


def test_serving_monitoring_and_training_agree_on_one_bundle(model, tmp_path):
    """Same bundle, same rows: the API's scores and tiers, the monthly run's stored ones and
    training's evaluation are the same numbers, and the reasons are the same features."""
    from safetynet.db.engine import make_engine
    from safetynet.db.migrate import migrate_engine
    from safetynet.monitoring.run import monitor_run
    from safetynet.serving.scoring import Batch, Scorer

    features, booster, _ = model
    X, _ = make_data(features, 400, seed=11)
    bundle = _bundle(booster, features, {"method": "platt", "a": 1.1, "b": -0.2})
    keys = [f"hh{i:04d}" for i in range(len(X))]
    policy = load_policy()

    served = Scorer(policy, reasons=5, indicators=False).score(
        bundle, Batch(keys, X, [None] * len(keys), {}), "en")

    engine = make_engine(f"sqlite:///{tmp_path / 'sn.db'}")
    migrate_engine(engine)
    frame = pd.DataFrame(X, columns=features).assign(household_key=keys, district="d1")
    policy_of_run = POLICY.replace(tiers=policy.tiers.thresholds())
    monitor_run(engine, bundle, frame, date(2026, 1, 31), policy_of_run,
                reports_dir=tmp_path / "reports", reasons_k=5)
    with engine.connect() as conn:
        hist = pd.read_sql(sa.text("SELECT * FROM score_history"), conn).set_index(
            "household_key").loc[keys]
        stored = pd.read_sql(sa.text("SELECT * FROM score_reasons ORDER BY rank"), conn)

    trained = bundle.predict_proba(X)  # training's champion comparison
    by_hand = bundle.calibrator.transform(booster.predict(X))  # training's fold evaluation
    serving_prob = np.array([r["risk_score"] for r in served])
    serving_tier = np.array([r["risk_tier"] for r in served])
    assert len(set(serving_tier)) >= 3  # the rows reach several tiers
    for prob in (hist["score"].to_numpy(), trained, by_hand):
        np.testing.assert_allclose(prob, serving_prob, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(hist["tier"].to_numpy(), serving_tier)
    np.testing.assert_array_equal(tiers_of(trained, policy.tiers.thresholds()), serving_tier)

    reasons = stored.groupby("household_key")["feature"].agg(list)
    flagged = [i for i, t in enumerate(serving_tier) if t != "green"]
    assert flagged and set(reasons.index) <= {keys[i] for i in flagged}
    for i in flagged:
        assert reasons.get(keys[i], []) == [r["feature"] for r in served[i]["reasons"]]
