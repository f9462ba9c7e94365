"""The model bundle: a native LightGBM booster, its feature order and its calibrator.

One prediction path for every stage: training scores a champion with it, monitoring ranks
every household with it, serving answers requests with it. NumPy only (no pandas, no pyfunc).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from safetynet.model.calibration import Calibrator

# up to this many rows LightGBM predicts on one thread (measured: docs/api.md, Performance)
SMALL_BATCH = 64
CHUNK_ROWS = 200_000


@dataclass
class Bundle:
    """What a registered model version is, loaded (`safetynet.model.load_bundle`)."""

    booster: Any  # lightgbm.Booster
    features: list[str]
    calibrator: Calibrator
    name: str
    version: str
    alias: str | None
    run_id: str | None = None
    feature_spec: dict[str, Any] = field(default_factory=dict)

    def calibrate(self, raw_prob: np.ndarray) -> np.ndarray:
        """Calibrated probability [n] in [0, 1] of the booster's raw probability [n]."""
        return np.clip(self.calibrator.transform(raw_prob), 0.0, 1.0)

    def _matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} feature columns, got {X.shape[1]}")
        return X

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated probability [n], TreeSHAP contributions in log-odds [n, n_features + 1]).

        X: [n, n_features] (or one row [n_features]) in `self.features` order; NaN is a valid
        missing value. The last contribution column is the base value; one `pred_contrib`
        pass gives both outputs (the raw log-odds is the row sum). Raises ValueError when the
        column count is wrong.
        """
        X = self._matrix(X)
        threads = 1 if len(X) <= SMALL_BATCH else 0
        contrib = self.booster.predict(X, pred_contrib=True, num_threads=threads)
        prob = 1.0 / (1.0 + np.exp(-contrib.sum(axis=1)))
        return self.calibrate(prob), contrib

    def predict_proba(self, X: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
        """Calibrated probability [n] without contributions (the cheap path), `chunk_rows` rows
        at a time. Same values as `predict(X)[0]` up to floating-point rounding (~1e-15)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"expected [n, {len(self.features)}] features, got {X.shape}")
        parts = [
            self.calibrate(self.booster.predict(X[i : i + chunk_rows]))
            for i in range(0, len(X), chunk_rows)
        ]
        return np.concatenate(parts) if parts else np.empty(0)
