"""Reasons of a monitoring run in long format (one row per household and reason).

Probabilities, tiers and the ranking itself are `safetynet.model`'s; the run computes
contributions only for flagged households and worklist items (why: docs/operations.md,
monthly run).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from safetynet.model import top_contributions


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
    top, phi = top_contributions(contributions, k)
    k = top.shape[1]
    if n == 0 or k == 0:
        return pd.DataFrame(
            {"household_key": [], "rank": [], "feature": [], "value": [], "contribution": []}
        )
    rows = np.repeat(np.arange(n), k)
    cols = top.ravel()
    out = pd.DataFrame(
        {
            "household_key": np.asarray(household_keys)[rows],
            "rank": np.tile(np.arange(1, k + 1), n).astype(np.int16),
            "feature": np.asarray(feature_names, dtype=object)[cols],
            "value": X[rows, cols].astype(float),
            "contribution": phi.ravel().astype(float),
        }
    )
    return out[out["contribution"] > 0].reset_index(drop=True)
