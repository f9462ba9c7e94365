"""How well calibrated a probability is: the reliability curve (the calibration plot's data).

The calibrator itself is `safetynet.model.Calibrator`.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve


def reliability_curve(
    prob: np.ndarray, y: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean predicted, observed rate, count) per non-empty quantile bin of `prob` [n];
    `y` [n] 0/1 labels. Bins as scikit-learn's `calibration_curve(strategy="quantile")`."""
    prob = np.asarray(prob, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rate, mean_p = calibration_curve(y, prob, n_bins=n_bins, strategy="quantile")
    edges = np.percentile(prob, np.linspace(0, 1, n_bins + 1) * 100)  # as calibration_curve
    count = np.bincount(np.searchsorted(edges[1:-1], prob), minlength=n_bins).astype(float)
    return mean_p, rate, count[count > 0]
