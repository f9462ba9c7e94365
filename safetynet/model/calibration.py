"""Probability calibration: fitted on a held-out slice, applied to the booster's raw probability.

JSON (`calibrator.json` in a registered run) holds everything needed to apply it:
  {"method": "isotonic", "x_thresholds": [...], "y_thresholds": [...],
   "within_steps": "raw_order"}                 (np.interp through the knots, clipped)
  {"method": "platt", "a": a, "b": b}      p = 1 / (1 + exp(-(a * logit(raw) + b)))
  {"method": "identity"}
Isotonic knots keep the raw score's order inside each isotonic step (`within_steps:
"raw_order"`, `ordered_isotonic_knots`); files written before that (no `within_steps` key) hold
scikit-learn's flat-step knots and are applied the same way, with np.interp.
Why isotonic or Platt, and why ordered steps: docs/training.md (Calibration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_EPS = 1e-6
STEP_SPREAD = 0.9  # share of the half-gap to a neighbouring step a step's scores may use
EDGE_SPREAD = 1e-6  # band of a step whose rate is 0 or 1 (it cannot spread around its rate)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """Maps the model's raw probability to a calibrated probability."""

    method: str = "identity"
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        raw: np.ndarray,
        y: np.ndarray,
        method: str = "auto",
        min_isotonic_positives: int = 200,
        order_within_steps: bool = True,
    ) -> Calibrator:
        """Isotonic with enough positives to be stable, Platt otherwise (`method='auto'`).

        `raw` [n] raw probabilities, `y` [n] 0/1 labels. One class only: identity. Isotonic
        keeps the raw order inside its steps (`ordered_isotonic_knots`) unless
        `order_within_steps` is False (scikit-learn's flat steps). Raises ValueError for an
        unknown method.
        """
        raw = np.asarray(raw, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if y.sum() == 0 or y.sum() == len(y):
            return cls("identity")
        if method == "auto":
            method = "isotonic" if y.sum() >= min_isotonic_positives else "platt"
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
            if not order_within_steps:
                return cls("isotonic", {"x_thresholds": iso.X_thresholds_.tolist(),
                                        "y_thresholds": iso.y_thresholds_.tolist()})
            xs, ys = ordered_isotonic_knots(raw, iso.predict(raw))
            return cls("isotonic", {"x_thresholds": xs.tolist(), "y_thresholds": ys.tolist(),
                                    "within_steps": "raw_order"})
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6).fit(_logit(raw).reshape(-1, 1), y)
            return cls("platt", {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])})
        if method == "identity":
            return cls("identity")
        raise ValueError(f"unknown calibration method {method!r} (isotonic, platt, auto)")

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probability [n] of raw probabilities [n]."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(raw, self.params["x_thresholds"], self.params["y_thresholds"])
        if self.method == "platt":
            z = self.params["a"] * _logit(raw) + self.params["b"]
            return 1.0 / (1.0 + np.exp(-z))
        if self.method == "identity":
            return raw
        raise ValueError(f"unknown calibration method {self.method!r}")

    __call__ = transform

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, **self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        data = dict(data)
        return cls(data.pop("method"), data)

    def to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def from_json(cls, path: Path) -> Calibrator:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def isotonic_steps(raw: np.ndarray, fitted: np.ndarray) -> list[np.ndarray]:
    """Row indices of each isotonic step (rows sharing one fitted value), lowest step first.

    `raw` [n] the calibration slice's raw scores, `fitted` [n] the isotonic fit at them
    (non-decreasing in `raw`)."""
    order = np.argsort(raw, kind="stable")
    v = np.asarray(fitted, dtype=np.float64)[order]
    cuts = np.flatnonzero(np.diff(v) != 0) + 1
    return np.split(order, cuts)


def ordered_isotonic_knots(
    raw: np.ndarray, fitted: np.ndarray, spread: float = STEP_SPREAD
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation knots (x, y) that keep the raw order inside each isotonic step.

    An isotonic fit maps every raw score of a step to the step's observed rate v, so a
    calibrated list ties in blocks of hundreds (docs/training.md, Calibration). Here each
    step with raw range [lo, hi] and mean raw m maps r to v + s (r - m): linear, so the
    step's mean calibrated value on the calibration rows is still exactly v (reliability per
    step unchanged), and increasing, so distinct raw scores stay distinct. The slope s keeps
    the step inside `spread` x half the gap to each neighbouring step's rate, so steps never
    overlap and the whole map increases. A step at rate 0 (or 1) cannot spread around its
    rate: it rises over [0, EDGE_SPREAD] (or [1 - EDGE_SPREAD, 1]), so its mean moves by at
    most 1e-6. Below and above the calibration range the map runs linearly to (0, 0) and
    (1, 1), so scores outside it keep their order too.

    `raw`, `fitted` [n] as in `isotonic_steps`. Returns strictly increasing x and y for
    `np.interp` (x in [0, 1] for raw probabilities in [0, 1]).
    """
    raw = np.asarray(raw, dtype=np.float64)
    fitted = np.asarray(fitted, dtype=np.float64)
    steps = isotonic_steps(raw, fitted)
    vals = np.array([fitted[rows[0]] for rows in steps])
    half_gaps = np.diff(vals) / 2
    down = np.r_[vals[0], half_gaps]  # room below each step's rate
    up = np.r_[half_gaps, 1.0 - vals[-1]]  # room above it
    xs: list[float] = []
    ys: list[float] = []
    for j, rows in enumerate(steps):
        r = raw[rows]
        lo, hi, mean, v = float(r.min()), float(r.max()), float(r.mean()), float(vals[j])
        if hi == lo:
            xs.append(lo)
            ys.append(v)
            continue
        if v <= 0.0 or v >= 1.0:  # an edge step: rise inside a tiny band at the bound
            width = min(EDGE_SPREAD, spread * (up[j] if v <= 0.0 else down[j]))
            ends = (0.5 * width, width) if v <= 0.0 else (1.0 - width, 1.0 - 0.5 * width)
        else:
            slope = min(spread * up[j] / (hi - mean) if hi > mean else np.inf,
                        spread * down[j] / (mean - lo) if mean > lo else np.inf)
            ends = (v + slope * (lo - mean), v + slope * (hi - mean))
        xs += [lo, hi]
        ys += list(ends)
    x, y = np.array(xs), np.array(ys)
    if x[0] > 0.0 and y[0] > 0.0:
        x, y = np.r_[0.0, x], np.r_[0.0, y]
    if x[-1] < 1.0 and y[-1] < 1.0:
        x, y = np.r_[x, 1.0], np.r_[y, 1.0]
    return x, y
