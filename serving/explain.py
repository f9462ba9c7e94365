"""Reasons from TreeSHAP contributions.

Scale: LightGBM's `pred_contrib` gives per-feature contributions in log-odds (the model's
raw output); the last column is the base value, and base + sum(contributions) is the raw
score. The calibrated probability is reported separately and is not a sum of these.

Which reasons: the top k features by *positive* contribution, i.e. the facts that pushed
this household's risk up, largest first. A caseworker asks "why was this household
flagged?"; protective factors answer a different question and are in /explain. A
household with fewer than k risk-raising features gets fewer reasons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from safetynet.features.definitions import FeatureText, fill_sentence
from safetynet.model import top_contributions

DIRECTION_TEXT = {
    "en": {"raises": "raises the risk", "lowers": "lowers the risk"},
    "zh": {"raises": "风险上升", "lowers": "风险下降"},
}


def top_reasons(
    contrib: np.ndarray, X: np.ndarray, features: Sequence[str], texts: dict[str, FeatureText],
    k: int, lang: str = "en",
) -> list[list[dict[str, Any]]]:
    """Per row, the k largest positive contributions as reason dicts (`top_contributions`)."""
    top, top_c = top_contributions(contrib, k)
    top_phi = top_c.tolist()  # Python floats: fast to read
    top_val = np.take_along_axis(X, top, axis=1).tolist()
    order_l = top.tolist()
    out = []
    for i in range(len(X)):
        row = []
        for j in range(top.shape[1]):
            c = top_phi[i][j]
            if c <= 0.0:
                break
            name = features[order_l[i][j]]
            v = top_val[i][j]
            missing = v != v  # NaN
            row.append({
                "feature": name, "value": None if missing else v, "contribution": c,
                "direction": "raises", "text": fill_sentence(texts[name], v, lang),
            })
        out.append(row)
    return out


def all_contributions(
    contrib_row: np.ndarray, x_row: np.ndarray, features: Sequence[str]
) -> list[dict[str, Any]]:
    """Every feature's contribution for one row, largest |contribution| first."""
    m = len(features)
    order = np.argsort(-np.abs(contrib_row[:m]), kind="stable")
    return [
        {"feature": features[j], "value": None if math.isnan(x_row[j]) else float(x_row[j]),
         "contribution": float(contrib_row[j])}
        for j in order
    ]
