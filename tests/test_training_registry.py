"""Train -> MLflow (SQLite) -> registry gate both ways -> rollback, and the serving contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow import MlflowClient

from safetynet.config import Settings
from safetynet.model import configure, load_bundle
from safetynet.training import promote as P
from safetynet.training.train import train_and_log
from tests.training_support import POLICY, config, fairness, spec, xor_table

NAME = "test-model"


def _state(client: MlflowClient) -> dict:
    rm = client.get_registered_model(NAME)
    versions = client.search_model_versions(f"name='{NAME}'")
    # the gate's own record on a version (gate_*) is not a change of the registry's state
    return {"aliases": {k: str(v) for k, v in rm.aliases.items()}, "tags": dict(rm.tags),
            "versions": sorted((v.version, tuple(sorted(
                (k, t) for k, t in v.tags.items() if not k.startswith("gate_"))))
                for v in versions)}


def _train(settings, table, policy, **kw):
    cfg_kw = kw.pop("cfg", {})
    return train_and_log(table, spec(**kw), config(**cfg_kw), settings=settings,
                         promotion=policy.promotion,
                         model_name=NAME, promote_after=True, feature_set_version="test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("mlhome"))
    table = xor_table()
    weak_policy = POLICY.replace(promotion={"margin": -1.0})
    weak = _train(settings, table, weak_policy, exclude=["p_true", "x2"])
    strong = _train(settings, table, POLICY)
    return settings, table, weak, strong


def test_first_champion_goes_through_the_gate_and_a_better_challenger_is_promoted(trained):
    settings, _, weak, strong = trained
    assert weak.decision.promoted and "best baseline" in weak.decision.reasons[0]
    assert strong.decision.promoted, strong.decision.summary()
    assert f"champion v{weak.version}" in strong.decision.reasons[0]
    configure(settings)
    client = MlflowClient()
    rm = client.get_registered_model(NAME)
    assert str(rm.aliases["champion"]) == strong.version and "challenger" not in rm.aliases
    assert json.loads(rm.tags[P.HISTORY_TAG]) == [weak.version, strong.version]
    m = strong.result.metrics
    run = client.get_run(strong.run_id)
    assert run.data.metrics["champion_test_precision_at_5pct"] < m["test_precision_at_5pct"]


def test_logged_metrics_and_artifacts(trained):
    settings, _, _, strong = trained
    configure(settings)
    client = MlflowClient()
    run = client.get_run(strong.run_id)
    metrics = run.data.metrics
    for key in ("test_roc_auc", "test_average_precision", "test_brier", "test_precision_at_5pct",
                "test_precision_at_5pct_worst", "test_precision_at_5pct_best",
                "test_recall_at_1pct", "test_lift_at_10pct", "test_precision_at_20_per_group",
                "test_baseline_best_precision_at_5pct", "fold0_precision_at_5pct",
                "fold1_roc_auc", "explain_ms_per_row", "fairness_groups_failing"):
        assert key in metrics, key
    # the XOR signal is out of reach of every baseline
    assert metrics["test_precision_at_5pct"] > metrics["test_baseline_best_precision_at_5pct"]
    assert metrics["explain_ms_per_row"] <= 0.5
    files = {a.path for a in client.list_artifacts(strong.run_id)}
    assert {"calibrator.json", "feature_spec.json", "model_card.md", "fairness.csv",
            "folds.json", "plots"} <= files
    plots = {a.path for a in client.list_artifacts(strong.run_id, "plots")}
    assert {"plots/calibration.png", "plots/precision_recall.png", "plots/precision_at_k.png",
            "plots/shap_beeswarm.png", "plots/fairness_disparities.png"} <= plots
    assert run.data.params["feature_set_version"] == "test"
    assert run.data.tags["safetynet.split"] == "temporal"


def test_bundle_contract(trained):
    settings, table, _, strong = trained
    bundle = load_bundle("champion", settings, name=NAME)
    assert bundle.version == strong.version and bundle.alias == "champion"
    assert bundle.features == ["x1", "x2", "x3", "x4", "x5", "x6"]
    assert bundle.feature_spec["feature_set_hash"]
    X = table[bundle.features].to_numpy()[:50]
    X[0, 2] = np.nan  # missing values are allowed
    prob, contrib = bundle.predict(X)
    assert prob.shape == (50,) and contrib.shape == (50, 7)
    raw = bundle.booster.predict(X)
    np.testing.assert_allclose(prob, bundle.calibrate(raw), atol=1e-9)
    np.testing.assert_allclose(1 / (1 + np.exp(-contrib.sum(axis=1))), raw, atol=1e-9)
    one, c1 = bundle.predict(X[1])
    assert one.shape == (1,) and c1.shape == (1, 7)
    with pytest.raises(ValueError):
        bundle.predict(X[:, :3])
    with pytest.raises(LookupError):
        load_bundle("nonexistent", settings, name=NAME)


def test_worse_or_unfair_challenger_changes_nothing_and_rollback(trained):
    settings, table, weak, strong = trained
    configure(settings)
    client = MlflowClient()
    worse = train_and_log(table, spec(exclude=["p_true", "x2"]), config(), settings=settings,
                          promotion=POLICY.promotion, model_name=NAME)
    before = _state(client)
    d = P.promote(client, NAME, POLICY.promotion)
    assert not d.promoted and "does not beat champion" in d.reasons[0]
    assert _state(client) == before
    assert client.get_model_version(NAME, worse.version).tags["gate_decision"] == "failed"
    assert before["aliases"] == {"champion": strong.version, "challenger": worse.version}

    strict = fairness(disparity_low=0.99, disparity_high=1.01, min_group_positives=1)
    unfair = train_and_log(table, spec(), config(fairness=strict), settings=settings,
                           promotion=POLICY.promotion, model_name=NAME)
    before = _state(client)
    d = P.promote(client, NAME, POLICY.promotion)
    assert not d.promoted
    assert any(r.startswith("fairness:") and "outside" in r for r in d.reasons), d.reasons
    assert _state(client) == before

    # rollback restores the previous champion, then refuses when there is none left
    r = P.rollback(client, NAME)
    assert r.promoted and r.champion_after == weak.version
    assert str(client.get_registered_model(NAME).aliases["champion"]) == weak.version
    # the challenger was compared with a champion that is no longer the champion: stale
    d = P.decide(client, NAME, POLICY.promotion)
    assert not d.promoted and "retrain" in d.reasons[0]
    before = _state(client)
    r = P.rollback(client, NAME)
    assert not r.promoted and "no previous champion" in r.reasons[0]
    assert _state(client) == before
    assert unfair.version != worse.version


def test_override_promotes_a_failing_challenger_and_records_why(trained):
    settings, table, _weak, _strong = trained
    configure(settings)
    client = MlflowClient()
    strict = fairness(disparity_low=0.99, disparity_high=1.01, min_group_positives=1)
    unfair = train_and_log(table, spec(), config(fairness=strict), settings=settings,
                           promotion=POLICY.promotion, model_name=NAME)
    assert not P.decide(client, NAME, POLICY.promotion).promoted
    d = P.promote(client, NAME, POLICY.promotion, override="demo: show the loop")
    assert d.promoted and d.reasons[0].startswith("OVERRIDDEN")
    assert str(client.get_registered_model(NAME).aliases["champion"]) == unfair.version
    tag = client.get_model_version(NAME, unfair.version).tags["promotion_override"]
    assert "demo: show the loop" in tag and "fairness" in tag
