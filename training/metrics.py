"""Ranking metrics at outreach capacity, tie-aware as in dssg/triage.

Scores tie (indicator counts, coarse models), and a top-k list cut inside a block of tied
scores is ambiguous. For every cut we report the worst case (tied negatives taken first), the
best case (tied positives first) and the expectation under random tie-breaking; `expected` is
the headline number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10)


def k_for_fraction(n: int, fraction: float) -> int:
    """Outreach capacity as a count: ceil(fraction * n), at least 1 (for n > 0)."""
    return 0 if n == 0 else max(1, math.ceil(fraction * n - 1e-9))


def pct_label(fraction: float) -> str:
    """0.05 -> '5pct', 0.005 -> '0.5pct' (stable metric-name suffix)."""
    pct = fraction * 100
    return f"{pct:g}pct"


def top_k_positives(y: np.ndarray, score: np.ndarray, k: int) -> tuple[float, float, float]:
    """(worst, expected, best) number of positives among the top k by score."""
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    n = len(y)
    k = min(k, n)
    if k <= 0:
        return 0.0, 0.0, 0.0
    # the k-th largest score is the cut; everything above it is in, the tie block is shared
    cut = np.partition(score, n - k)[n - k]
    above = score > cut
    tied = score == cut
    n_above = int(above.sum())
    p_above = float(y[above].sum())
    n_tie = int(tied.sum())
    p_tie = float(y[tied].sum())
    take = k - n_above
    worst = p_above + max(0.0, take - (n_tie - p_tie))
    best = p_above + min(float(take), p_tie)
    expected = p_above + take * p_tie / n_tie
    return worst, expected, best


def at_k(y: np.ndarray, score: np.ndarray, k: int) -> dict[str, float]:
    """Precision and recall at a top-k cut: worst, expected (plain name) and best."""
    y = np.asarray(y)
    total_pos = float(np.sum(y))
    worst, expected, best = top_k_positives(y, score, k)
    k_eff = max(min(k, len(y)), 1)
    out: dict[str, float] = {}
    for suffix, pos in (("_worst", worst), ("", expected), ("_best", best)):
        out[f"precision{suffix}"] = pos / k_eff
        out[f"recall{suffix}"] = pos / total_pos if total_pos > 0 else float("nan")
    out["k"] = float(k_eff)
    return out


def grouped_at_k(
    y: np.ndarray, score: np.ndarray, groups: np.ndarray, k_per_group: int
) -> dict[str, float]:
    """A fixed visit count per group (e.g. per district): the union of each group's top k.

    Vectorised over groups: rank within group by score, then resolve each group's tie block.
    """
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    codes, _ = _factorize(groups)
    n_groups = codes.max() + 1 if len(codes) else 0
    # sort by group, then score descending; the k-th row of each group is its cut
    order = np.lexsort((-score, codes))
    c_sorted, s_sorted = codes[order], score[order]
    starts = np.searchsorted(c_sorted, np.arange(n_groups), side="left")
    sizes = np.bincount(codes, minlength=n_groups)
    k_g = np.minimum(k_per_group, sizes)
    cut = np.where(k_g > 0, s_sorted[np.minimum(starts + k_g - 1, len(order) - 1)], np.inf)
    row_cut = cut[codes]
    above = score > row_cut
    tied = score == row_cut
    n_above = np.bincount(codes, weights=above, minlength=n_groups)
    p_above = np.bincount(codes, weights=above * y, minlength=n_groups)
    n_tie = np.bincount(codes, weights=tied, minlength=n_groups)
    p_tie = np.bincount(codes, weights=tied * y, minlength=n_groups)
    take = k_g - n_above
    with np.errstate(invalid="ignore", divide="ignore"):
        exp_tie = np.where(n_tie > 0, take * p_tie / np.maximum(n_tie, 1), 0.0)
    worst = p_above + np.maximum(0.0, take - (n_tie - p_tie))
    best = p_above + np.minimum(take, p_tie)
    expected = p_above + exp_tie
    k_total = float(k_g.sum())
    total_pos = float(y.sum())
    out: dict[str, float] = {"k": k_total}
    for suffix, pos in (("_worst", worst.sum()), ("", expected.sum()), ("_best", best.sum())):
        out[f"precision{suffix}"] = pos / k_total if k_total else float("nan")
        out[f"recall{suffix}"] = pos / total_pos if total_pos else float("nan")
    return out


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return codes.astype(np.int64), uniques


def precision_at_k_curve(
    y: np.ndarray, score: np.ndarray, fractions: np.ndarray
) -> np.ndarray:
    """Expected precision at each fraction (for the precision@k plot)."""
    n = len(y)
    return np.array([at_k(y, score, k_for_fraction(n, f))["precision"] for f in fractions])


def evaluate(
    y: np.ndarray,
    score: np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    groups: np.ndarray | None = None,
    k_per_group: int | None = None,
    prob: np.ndarray | None = None,
) -> dict[str, float]:
    """The standard metric set under stable names (no prefix).

    `score` ranks; `prob` (calibrated probability, default `score`) is used for the Brier score.
    Names: roc_auc, average_precision, brier, base_rate, n, precision_at_5pct (+_worst/_best),
    recall_at_5pct (+_worst/_best), lift_at_5pct, and with groups precision_at_{k}_per_group.
    """
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    n = len(y)
    base = float(y.mean()) if n else float("nan")
    out: dict[str, float] = {"n": float(n), "positives": float(y.sum()), "base_rate": base}
    both = 0 < y.sum() < n
    out["roc_auc"] = float(roc_auc_score(y, score)) if both else float("nan")
    out["average_precision"] = float(average_precision_score(y, score)) if both else float("nan")
    if prob is not None or (score.min(initial=0) >= 0 and score.max(initial=0) <= 1):
        p = np.clip(prob if prob is not None else score, 0, 1)
        out["brier"] = float(brier_score_loss(y, p)) if n else float("nan")
    for f in fractions:
        lab = pct_label(f)
        m = at_k(y, score, k_for_fraction(n, f))
        for key, val in m.items():
            if key == "k":
                out[f"k_at_{lab}"] = val
            else:
                name, _, suffix = key.partition("_")
                out[f"{name}_at_{lab}{'_' + suffix if suffix else ''}"] = val
        out[f"lift_at_{lab}"] = m["precision"] / base if base > 0 else float("nan")
    if groups is not None and k_per_group:
        m = grouped_at_k(y, score, groups, k_per_group)
        for key, val in m.items():
            name, _, suffix = key.partition("_")
            out[f"{name}_at_{k_per_group}_per_group{'_' + suffix if suffix else ''}"] = val
    return out


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()}
