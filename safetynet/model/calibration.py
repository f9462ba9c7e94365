"""Probability calibration: fitted on a held-out slice, applied to the booster's raw probability.

JSON (`calibrator.json` in a registered run) holds everything needed to apply it:
  {"method": "isotonic", "x_thresholds": [...], "y_thresholds": [...]}   (np.interp, clipped)
  {"method": "platt", "a": a, "b": b}      p = 1 / (1 + exp(-(a * logit(raw) + b)))
  {"method": "identity"}
Why isotonic or Platt: docs/training.md (Calibration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_EPS = 1e-6


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
        cls, raw: np.ndarray, y: np.ndarray, method: str = "auto", min_isotonic_positives: int = 200
    ) -> Calibrator:
        """Isotonic with enough positives to be stable, Platt otherwise (`method='auto'`).

        `raw` [n] raw probabilities, `y` [n] 0/1 labels. One class only: identity. Raises
        ValueError for an unknown method.
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
            return cls(
                "isotonic",
                {
                    "x_thresholds": iso.X_thresholds_.tolist(),
                    "y_thresholds": iso.y_thresholds_.tolist(),
                },
            )
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
