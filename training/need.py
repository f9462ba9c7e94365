"""Need metrics at outreach capacity: who of the households in unmet need does the list reach?

Pure functions over a score, a 0/1 need outcome and group attributes; they never read the
truth (on simulated data `training.evaluation.attach_truth_need` supplies the outcome).

- `test_need_precision_at_K`, `test_need_recall_at_K` for K in `fractions` (1%, 5%, 10%);
- `test_need_recall_ratio_min_<attribute>` at `ratio_fraction` (5%): the lowest group's need
  recall divided by the best group's, over groups with at least `min_needy` households in need
  (smaller groups are in the detail table, flagged `counted = False`, but not in the ratio).

Ties: the top-k list is cut inside a block of tied scores by expectation, as in dssg/triage
and `training.metrics.top_k_positives`: every household above the cut counts as listed with
weight 1, every household in the tied block at the cut with weight (places left) / (block
size), the probability a uniformly random tie-break lists it. Precision and per-group recall
are linear in these weights, so the figures are the exact expectation over random tie-breaks
and do not depend on row order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from safetynet.training.metrics import k_for_fraction, pct_label
from safetynet.training.truth_columns import TRUTH_ELDERLY_ALONE_COLUMN

DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10)
RATIO_FRACTION = 0.05
MIN_NEEDY = 30
# where the frame lacks an attribute, the column that may stand in for it (evaluation only:
# `training.evaluation.attach_truth_need` adds the simulator's household type under this name)
ATTRIBUTE_FALLBACKS: Mapping[str, str] = {"elderly_living_alone": TRUTH_ELDERLY_ALONE_COLUMN}
DETAIL_COLUMNS = ["attribute", "group", "n", "needy", "reached", "recall", "ratio_to_best",
                  "counted"]


def listing_weights(score: np.ndarray, k: int) -> np.ndarray:
    """Probability (n,) that each row is in the top `k` by score under random tie-breaking:
    1 above the cut score, (k - rows above) / (tied rows) at it, 0 below. Sums to min(k, n)."""
    score = np.asarray(score, dtype=np.float64)
    n = len(score)
    k = min(max(int(k), 0), n)
    weights = np.zeros(n, dtype=np.float64)
    if k == 0:
        return weights
    cut = np.partition(score, n - k)[n - k]
    above = score > cut
    tied = score == cut
    weights[above] = 1.0
    weights[tied] = (k - int(above.sum())) / int(tied.sum())
    return weights


def need_audit_groups(
    frame: pd.DataFrame, attributes: Sequence[str],
    fallbacks: Mapping[str, str] = ATTRIBUTE_FALLBACKS,
) -> pd.DataFrame:
    """The audited attributes present in `frame` (or their fallback column, renamed to the
    attribute), in `attributes` order; attributes with neither are left out."""
    cols = {}
    for attr in attributes:
        source = attr if attr in frame.columns else fallbacks.get(attr)
        if source is not None and source in frame.columns:
            cols[attr] = frame[source]
    return pd.DataFrame(cols, index=frame.index)


def _group_labels(values: pd.Series) -> np.ndarray:
    """Group labels as strings: 0/1 flags stay '0'/'1' even when stored as floats."""
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_float_dtype(s) and (s.dropna() % 1 == 0).all():
        s = s.astype("Int64")
    return s.astype("string").fillna("(missing)").to_numpy(dtype=object)


def _needy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sum(y_true))


def _reached(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sum(np.asarray(y_true) * np.asarray(y_pred)))


def _expected_recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    needy = float(np.sum(y_true))
    return _reached(y_true, y_pred) / needy if needy > 0 else float("nan")


def _count(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(len(y_true))


def _clean(score: np.ndarray, need: np.ndarray, groups: pd.DataFrame | None
           ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """Drop rows whose need is NaN/NA; need as float 0/1."""
    need_s = pd.Series(need).reset_index(drop=True)
    need_f = pd.to_numeric(need_s, errors="coerce").astype("float64").to_numpy()
    score_f = np.asarray(score, dtype=np.float64)
    if len(score_f) != len(need_f):
        raise ValueError(f"score has {len(score_f)} rows, need {len(need_f)}")
    keep = ~np.isnan(need_f)
    if groups is not None:
        if len(groups) != len(need_f):
            raise ValueError(f"groups has {len(groups)} rows, need {len(need_f)}")
        groups = groups.reset_index(drop=True)[keep].reset_index(drop=True)
    return score_f[keep], need_f[keep], groups


def need_recall_by_group(
    score: np.ndarray,
    need: np.ndarray,
    groups: pd.DataFrame,
    fraction: float = RATIO_FRACTION,
    min_needy: int = MIN_NEEDY,
) -> pd.DataFrame:
    """Per (attribute, group) need recall of the top `fraction` (expected over tie-breaks).

    Columns: attribute, group, n (rows), needy, reached (expected needy households listed),
    recall, ratio_to_best (recall / the best counted group's recall of that attribute),
    counted (needy >= min_needy: part of the ratio). Rows with NaN need are dropped first;
    the list is the top `fraction` of the remaining rows, one ranking over all of them.
    Per-group recall comes from fairlearn's `MetricFrame`.
    """
    score, need, groups = _clean(score, need, groups)
    weights = listing_weights(score, k_for_fraction(len(score), fraction))
    metrics = {"n": _count, "needy": _needy, "reached": _reached, "recall": _expected_recall}
    frames = []
    for attr in groups.columns:
        mf = MetricFrame(metrics=metrics, y_true=need, y_pred=weights,
                         sensitive_features=pd.Series(_group_labels(groups[attr]), name="group"))
        table = mf.by_group.reset_index()
        table["n"] = table["n"].astype(int)
        table["needy"] = table["needy"].astype(int)
        table["counted"] = table["needy"] >= min_needy
        best = table.loc[table["counted"], "recall"].max()
        table["ratio_to_best"] = table["recall"] / best if best > 0 else np.nan
        table.insert(0, "attribute", attr)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=DETAIL_COLUMNS)
    return pd.concat(frames, ignore_index=True)[DETAIL_COLUMNS]


def recall_ratio_min(detail: pd.DataFrame) -> dict[str, float]:
    """attribute -> lowest counted group's recall / best counted group's (NaN with fewer than
    two counted groups or a best recall of 0), from a `need_recall_by_group` table."""
    out: dict[str, float] = {}
    for attr, table in detail.groupby("attribute", sort=False):
        counted = table.loc[table["counted"], "recall"]
        best = counted.max()
        ok = len(counted) >= 2 and best > 0
        out[str(attr)] = float(counted.min() / best) if ok else float("nan")
    return out


def need_metrics(
    score: np.ndarray,
    need: np.ndarray,
    groups: pd.DataFrame,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    attributes: Sequence[str] | None = None,
    ratio_fraction: float = RATIO_FRACTION,
    min_needy: int = MIN_NEEDY,
    prefix: str = "test_",
) -> dict[str, float]:
    """Need precision and recall at each capacity fraction and the group recall ratios.

    score: (n,) ranking score (higher = listed first); need: (n,) 0/1 with NaN/NA for rows
    whose outcome is unknown (dropped); groups: (n,) rows of attribute columns (the
    `attributes` present are audited, absent ones skipped; None: every column of `groups`,
    e.g. `need_audit_groups(frame, policy.fairness.need_audit_attributes)`). Keys (prefix "test_"):
    `need_precision_at_{p}`, `need_recall_at_{p}` for p in fractions ("1pct", "5pct", ...),
    `need_recall_ratio_min_<attribute>` at `ratio_fraction`, `need_positives`, `need_rows`.
    Values are expectations over random tie-breaks; recall is NaN when no row is in need.
    """
    score_c, need_c, _ = _clean(score, need, None)
    n, positives = len(need_c), float(need_c.sum())
    out: dict[str, float] = {f"{prefix}need_rows": float(n),
                             f"{prefix}need_positives": positives}
    for fraction in fractions:
        k = k_for_fraction(n, fraction)
        reached = float(np.dot(listing_weights(score_c, k), need_c))
        label = pct_label(fraction)
        out[f"{prefix}need_precision_at_{label}"] = reached / k if k else float("nan")
        out[f"{prefix}need_recall_at_{label}"] = reached / positives if positives else float(
            "nan")
    wanted = groups.columns if attributes is None else attributes
    audited = groups[[a for a in wanted if a in groups.columns]]
    detail = need_recall_by_group(score, need, audited, ratio_fraction, min_needy)
    for attr, ratio in recall_ratio_min(detail).items():
        out[f"{prefix}need_recall_ratio_min_{attr}"] = ratio
    return out
