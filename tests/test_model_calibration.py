"""Isotonic calibration keeps the raw order inside its steps (issue 12, item 7b)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from safetynet.model import Calibrator
from safetynet.model.calibration import isotonic_steps


def _slice(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores of a skewed model (most near 0) and labels a bit above them."""
    rng = np.random.default_rng(seed)
    raw = rng.beta(1.2, 30, n)
    y = (rng.random(n) < np.clip(0.004 + raw * 1.3, 0, 1)).astype(float)
    return raw, y


def test_distinct_raw_scores_stay_distinct_and_in_order():
    raw, y = _slice()
    cal = Calibrator.fit(raw, y, "isotonic")
    flat = Calibrator.fit(raw, y, "isotonic", order_within_steps=False)
    new = np.random.default_rng(1).beta(1.2, 30, 20_000)  # scores the slice never saw
    new = np.r_[new, raw.max() + 0.01, raw.max() + 0.2, raw.min() / 2]  # beyond its range
    order = np.argsort(new)
    p = cal.transform(new)[order]
    assert np.all(np.diff(p) > 0)  # strictly increasing: no ties, raw order kept
    assert len(np.unique(flat.transform(new))) < 100  # the flat steps tie in blocks
    assert np.all((p >= 0) & (p <= 1))


def test_each_isotonic_step_keeps_its_observed_rate():
    raw, y = _slice()
    cal = Calibrator.fit(raw, y, "isotonic")
    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y).predict(raw)
    steps = isotonic_steps(raw, fitted)
    assert len(steps) > 10
    p = cal.transform(raw)
    edge = 0
    for rows in steps:  # mean calibrated value per step = the step's observed rate
        rate = y[rows].mean()
        assert fitted[rows[0]] == pytest.approx(rate, abs=1e-12)
        if 0 < rate < 1:
            assert p[rows].mean() == pytest.approx(rate, abs=1e-12)
        else:  # a step at rate 0 rises inside [0, 1e-6] instead of tying
            edge += 1
            assert p[rows].mean() == pytest.approx(rate, abs=1e-6)
    assert edge >= 1  # this slice has one: its lowest step
    assert p.mean() == pytest.approx(y.mean(), abs=1e-6)  # calibrated in the large


def test_json_roundtrip_and_old_flat_step_files_still_apply(tmp_path):
    raw, y = _slice(5_000)
    cal = Calibrator.fit(raw, y, "isotonic")
    cal.to_json(tmp_path / "c.json")
    back = Calibrator.from_json(tmp_path / "c.json")
    assert back.params["within_steps"] == "raw_order"
    np.testing.assert_array_equal(back.transform(raw), cal.transform(raw))
    # a calibrator.json written before: scikit-learn's knots, no within_steps key
    old = {"method": "isotonic", "x_thresholds": [0.0, 0.1, 0.2, 0.5],
           "y_thresholds": [0.01, 0.01, 0.3, 0.3]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    np.testing.assert_allclose(Calibrator.from_json(tmp_path / "old.json").transform(
        np.array([0.05, 0.15, 0.4, 0.9])), [0.01, 0.155, 0.3, 0.3])
