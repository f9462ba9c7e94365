"""Batch scoring in-process: calibrated probabilities for everyone, SHAP reasons for the flagged.

Probabilities are cheap (about a microsecond per household); SHAP contributions cost about
0.3 ms per household for the budgeted model, so they are computed only for flagged households.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

TIER_ORDER = ("green", "yellow", "orange", "red")  # rank = index: higher is more urgent


class ScoringBundle(Protocol):
    """What monitoring needs from `safetynet.training.bundle.ModelBundle`."""

    features: list[str]
    version: str
    name: str

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and log-odds SHAP contributions (base value last column)."""
        ...


def predict_proba(bundle: Any, X: np.ndarray, chunk_rows: int = 200_000) -> np.ndarray:
    """Calibrated probabilities without SHAP: the bundle's own cheap path when it has one."""
    if hasattr(bundle, "predict_proba"):
        fn = bundle.predict_proba
    elif hasattr(bundle, "booster") and hasattr(bundle, "calibrate"):

        def fn(chunk: np.ndarray) -> np.ndarray:
            return np.asarray(bundle.calibrate(bundle.booster.predict(chunk)), dtype=float)
    else:  # last resort: the full path (computes contributions too; slow on millions)

        def fn(chunk: np.ndarray) -> np.ndarray:
            return bundle.predict(chunk)[0]

    parts = [
        np.asarray(fn(X[i : i + chunk_rows]), dtype=float) for i in range(0, len(X), chunk_rows)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def assign_tiers(scores: np.ndarray, tiers: Mapping[str, float]) -> np.ndarray:
    """Tier names from calibrated probabilities (policy [tiers], checked from the top)."""
    ordered = sorted(tiers.items(), key=lambda kv: kv[1], reverse=True)
    conditions = [scores >= threshold for _, threshold in ordered]
    return np.select(conditions, [name for name, _ in ordered], default="green").astype(object)


def tier_rank(tiers: np.ndarray | pd.Series) -> np.ndarray:
    """Urgency rank of tier names (green 0 … red 3); unknown/missing tiers rank -1."""
    mapping = {name: i for i, name in enumerate(TIER_ORDER)}
    return pd.Series(tiers, dtype=object).map(mapping).fillna(-1).to_numpy(dtype=int)


def top_reasons(
    household_keys: np.ndarray,
    X: np.ndarray,
    contributions: np.ndarray,
    feature_names: list[str],
    k: int = 5,
) -> pd.DataFrame:
    """The k features that pushed each household's score up most, in long format.

    `contributions` has one column per feature plus the base value last (LightGBM
    `pred_contrib`). Only positive contributions are reasons for being flagged.
    Returns columns household_key, rank (1 = strongest), feature, value, contribution.
    """
    n, m = X.shape
    if contributions.shape != (n, m + 1):
        raise ValueError(
            f"contributions have shape {contributions.shape}, expected {(n, m + 1)} "
            "(one column per feature plus the base value)"
        )
    k = min(k, m)
    if n == 0 or k == 0:
        return pd.DataFrame(
            {"household_key": [], "rank": [], "feature": [], "value": [], "contribution": []}
        )
    phi = contributions[:, :m]
    top = np.argpartition(-phi, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    order = np.argsort(-np.take_along_axis(phi, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    rows = np.repeat(np.arange(n), k)
    cols = top.ravel()
    out = pd.DataFrame(
        {
            "household_key": np.asarray(household_keys)[rows],
            "rank": np.tile(np.arange(1, k + 1), n).astype(np.int16),
            "feature": np.asarray(feature_names, dtype=object)[cols],
            "value": X[rows, cols].astype(float),
            "contribution": phi[rows, cols].astype(float),
        }
    )
    return out[out["contribution"] > 0].reset_index(drop=True)
