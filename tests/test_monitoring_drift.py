"""Population stability index against the training reference, and the retraining rule."""

from __future__ import annotations

import numpy as np
import pytest
from monitoring_support import POLICY

from safetynet.monitoring.drift import SCORE, DriftReference, assess, drift_table, plot_drift, psi


def test_psi_matches_hand_computation():
    q, p = np.array([0.5, 0.5]), np.array([0.8, 0.2])
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(q, p) == pytest.approx(expected)
    assert psi(q, q) == 0.0


def test_reference_roundtrip_and_shift_detection(tmp_path):
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(0, 1, 20_000), rng.integers(0, 2, 20_000).astype(float)])
    X[::10, 0] = np.nan
    ref = DriftReference.fit(X, ["a", "b"], rng.random(20_000), "m", "3")
    assert len(ref.edges["a"]) == 9 and ref.edges["b"] == [0.0, 1.0]  # ties collapse
    assert ref.shares["a"][-1] == pytest.approx(0.1)  # missing is its own bin
    ref.save(tmp_path / "ref.json")
    ref = DriftReference.load(tmp_path / "ref.json")

    same = np.column_stack([rng.normal(0, 1, 20_000), rng.integers(0, 2, 20_000).astype(float)])
    same[::10, 0] = np.nan
    stable = drift_table(ref, same, ["a", "b"], rng.random(20_000))
    assert max(stable.values()) < 0.01

    moved = same.copy()
    moved[:, 0] += 1.0
    drifted = drift_table(ref, moved, ["a", "b"], rng.random(20_000) ** 3)
    assert drifted["a"] > 0.25 and drifted["b"] < 0.01 and drifted[SCORE] > 0.25
    verdict = assess(drifted, POLICY.drift)
    assert verdict["recommend_retrain"] and verdict["features_drifted"] == ["a"]
    png = plot_drift(drifted, POLICY.drift, tmp_path / "d.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_retrain_rule_thresholds():
    d = POLICY.drift
    calm = {SCORE: 0.05, "a": 0.3, "b": 0.01, "c": 0.02, "d": 0.01, "e": 0.0}
    assert not assess(calm, d)["recommend_retrain"]  # 1 of 5 features is not "many"
    assert assess({**calm, "b": 0.4}, d)["recommend_retrain"]  # 2 of 5 > 20%
    assert assess({**calm, SCORE: 0.26}, d)["recommend_retrain"]
    assert assess(calm, d, precision_drop=0.25)["recommend_retrain"]
    assert not assess(calm, d, precision_drop=0.15)["recommend_retrain"]
