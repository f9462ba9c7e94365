"""Tiers: calibrated probability -> tier name, by the thresholds of policy.toml [tiers]."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

TIERS = ("red", "orange", "yellow")  # checked from the top; below all of them: green
TIER_ORDER = ("green", "yellow", "orange", "red")  # rank = index: higher is more urgent

_TIER_LABELS = np.array([*TIERS, "green"])


def tiers_of(prob: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """Tier name per probability [n] -> [n] str: the first of red, orange, yellow whose
    threshold (`thresholds[name]`) is reached, else green. KeyError when a tier is missing.

    An argmax over the (rows x tiers) mask: `np.select`'s result at a fraction of its cost
    (docs/api.md, Performance).
    """
    prob = np.asarray(prob, dtype=float)
    limits = np.array([float(thresholds[t]) for t in TIERS])
    hit = prob[:, None] >= limits[None, :]
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), len(TIERS))
    return _TIER_LABELS[first]


def tier_rank(tiers: np.ndarray | pd.Series) -> np.ndarray:
    """Urgency rank [n] int of tier names (green 0 … red 3); unknown/missing tiers rank -1."""
    mapping = {name: i for i, name in enumerate(TIER_ORDER)}
    return pd.Series(tiers, dtype=object).map(mapping).fillna(-1).to_numpy(dtype=int)
