"""Reason ranking: which features pushed a row's risk up most.

Only positive contributions are reasons for being flagged (the facts that raised the risk);
protective factors answer another question (`/explain`). Why: docs/api.md (/explain, scale).
"""

from __future__ import annotations

import numpy as np


def top_contributions(contrib: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(feature index [n, k'], contribution [n, k']) of each row's k' = min(k, m) largest
    feature contributions, largest first.

    `contrib` is [n, m + 1] as `Bundle.predict` returns it (m features, base value last).
    Entries with a contribution <= 0 are not reasons: they come last in a row and callers
    drop them, so a row has at most k reasons and possibly none. Ties keep a stable order.
    """
    contrib = np.asarray(contrib, dtype=float)
    n, m = contrib.shape[0], contrib.shape[1] - 1
    k = max(0, min(k, m))
    if n == 0 or k == 0:
        return np.empty((n, 0), dtype=np.intp), np.empty((n, 0))
    phi = contrib[:, :m]
    top = np.argpartition(-phi, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    order = np.argsort(-np.take_along_axis(phi, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return top, np.take_along_axis(phi, top, axis=1)
