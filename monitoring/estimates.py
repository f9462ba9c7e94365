"""Design-based need estimates an office can compute from its own visits (no truth).

Input: one row per visited household (`visits`): `as_of` (the worklist month), `district`
(the sampling stratum), `listed` / `audit` (bool: on the score's list, or drawn into the random
audit slice of the unlisted pool), `selection_prob` (1 for listed households, n_audit / N_pool
for audited ones in their district and month), `need` (1 hardship confirmed, 0 not, NaN when
the visit found nobody), and the group attribute columns. Optionally `pools`: one row per
(as_of, district) with `n_unlisted` (the pool the audit slice was drawn from), to find cells
whose pool had no audit visit.

Estimates (each a `NeedEstimate`, with a 95% interval or an explicit status):

- `need_precision`: the share of listed households found in need;
- `unlisted_needy`: the estimated number of unlisted households in need (exclusion error);
- `need_recall`: listed needy / (listed needy + estimated unlisted needy).

Weights are Horvitz-Thompson, 1 / selection_prob, times a nonresponse adjustment within each
(as_of, district, listed/audit) cell (selected / reached), so unreachable households are
assumed to resemble the reached ones of their cell. Months are pooled backwards from the
latest until a group has `min_audit_visits` audit visits and its unlisted and recall
intervals are at most `max_width` wide (at most `max_months`); below that, or with an
interval still wider than `max_width`, the status is "not_enough_audit_visits" (for
precision "not_enough_listed_visits") and no value is given. Method and its justification:
docs/monitoring-estimates.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from safetynet import visit_design

OK = "ok"
NOT_ENOUGH_AUDIT = "not_enough_audit_visits"
NOT_ENOUGH_LISTED = "not_enough_listed_visits"
QUANTITIES = ("need_precision", "unlisted_needy", "need_recall")
VISIT_COLUMNS = ("as_of", "listed", "audit", "selection_prob", "need")


@dataclass(frozen=True)
class NeedEstimate:
    """One estimate for the whole population (attribute None) or one group.

    value/low/high: a share (precision, recall) or a household count (unlisted_needy); None
    unless status == "ok". months: the as-of months pooled (ISO dates, newest first).
    listed_visits / audit_visits: reached visits of the group in those months.
    uncovered_cells: (month, district) cells with an unlisted pool but no reached audit visit,
    left out of the unlisted and recall estimates (and of the recall's listed part).
    """

    quantity: str
    attribute: str | None
    group: str | None
    status: str
    value: float | None
    low: float | None
    high: float | None
    months: tuple[str, ...]
    listed_visits: int
    audit_visits: int
    uncovered_cells: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _check(visits: pd.DataFrame, stratum: str) -> None:
    missing = [c for c in (*VISIT_COLUMNS, stratum) if c not in visits.columns]
    if missing:
        raise ValueError(f"visits lack columns {missing}")
    prob = visits["selection_prob"].to_numpy(dtype=np.float64)
    if not ((prob > 0) & (prob <= 1)).all():
        raise ValueError("selection_prob must be in (0, 1]")
    if (visits["listed"].astype(bool) & visits["audit"].astype(bool)).any():
        raise ValueError("a visit is either listed or audit, not both")


def design_weights(visits: pd.DataFrame, stratum: str = "district") -> pd.Series:
    """Per reached visit: 1 / selection_prob x (selected / reached) in its (as_of, stratum,
    listed) cell (`safetynet.visit_design.design_weights`); NaN for visits whose need is
    unknown (nobody reached). Index of `visits`."""
    cells = [visits["as_of"], visits[stratum], visits["listed"].astype(bool)]
    return visit_design.design_weights(visits["selection_prob"], visits["need"].notna(), cells)


def _kish(weights: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2 (0 for no weights)."""
    s2 = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / s2 if s2 > 0 else 0.0


def weighted_share_interval(
    y: np.ndarray, weights: np.ndarray, alpha: float = 0.05, method: str = "wilson"
) -> tuple[float, float, float]:
    """(share, low, high): the weighted (Hajek) share of y = 1 and its interval from
    statsmodels' `proportion_confint` at Kish's effective sample size. Shapes (n,), (n,)."""
    y = np.asarray(y, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    total = float(weights.sum())
    if total <= 0:
        return float("nan"), float("nan"), float("nan")
    share = float(np.dot(weights, y)) / total
    n_eff = _kish(weights)
    low, high = proportion_confint(share * n_eff, n_eff, alpha=alpha, method=method)
    return share, float(low), float(high)


def _months_back(months: Sequence[pd.Timestamp], as_of: pd.Timestamp, k: int) -> list:
    return [m for m in sorted(months, reverse=True) if m <= as_of][:k]


def _uncovered(visits: pd.DataFrame, pools: pd.DataFrame | None, stratum: str,
               months: Sequence[pd.Timestamp]) -> set[tuple]:
    """(as_of, stratum) cells with a positive unlisted pool and no reached audit visit."""
    if pools is None:
        return set()
    pool = pools[pd.to_datetime(pools["as_of"]).isin(months) & (pools["n_unlisted"] > 0)]
    cells = set(zip(pd.to_datetime(pool["as_of"]), pool[stratum], strict=True))
    a = visits[visits["audit"].astype(bool) & visits["need"].notna()]
    return cells - set(zip(a["as_of"], a[stratum], strict=True))


def _estimates_for(
    frame: pd.DataFrame, in_group: pd.Series, attribute: str | None, group: str | None,
    months: tuple[str, ...], uncovered: set[tuple], stratum: str, *, alpha: float,
    method: str, min_audit: int, min_listed: int, max_width: float,
) -> list[NeedEstimate]:
    reached = frame["need"].notna()
    listed = frame["listed"].astype(bool) & reached
    audit = frame["audit"].astype(bool) & reached
    cells = pd.MultiIndex.from_arrays([frame["as_of"], frame[stratum]])
    covered = pd.Series(~cells.isin(list(uncovered)), index=frame.index)
    y = frame["need"].fillna(0).to_numpy(dtype=np.float64)
    w = frame["_w"].fillna(0).to_numpy(dtype=np.float64)
    g = in_group.to_numpy(dtype=bool)
    n_listed, n_audit = int((listed & in_group).sum()), int((audit & in_group).sum())
    common = dict(attribute=attribute, group=group, months=months, listed_visits=n_listed,
                  audit_visits=n_audit, uncovered_cells=len(uncovered))

    def make(quantity: str, status: str, value=None, low=None, high=None) -> NeedEstimate:
        return NeedEstimate(quantity, status=status, value=value, low=low, high=high, **common)

    out = []
    lm = (listed & in_group).to_numpy()
    precision = weighted_share_interval(y[lm], w[lm], alpha, method) if lm.any() else None
    if precision is None or n_listed < min_listed or precision[2] - precision[1] > max_width:
        out.append(make("need_precision", NOT_ENOUGH_LISTED))
    else:
        out.append(make("need_precision", OK, *precision))
    # unlisted needy of the group = N_unlisted x share of (in need AND in group) among all
    # audited households: a proportion over the whole audit sample, known denominator
    am = (audit & covered).to_numpy()
    n_pool = float(w[am].sum())
    share, q_lo, q_hi = weighted_share_interval(y[am] * g[am], w[am], alpha, method) \
        if am.any() else (float("nan"),) * 3
    y_listed = float(np.dot(w, y * (lm & covered.to_numpy())))
    if n_audit < min_audit or not am.any():
        out += [make("unlisted_needy", NOT_ENOUGH_AUDIT), make("need_recall", NOT_ENOUGH_AUDIT)]
        return out
    out.append(make("unlisted_needy", OK, n_pool * share, n_pool * q_lo, n_pool * q_hi))
    total = y_listed + n_pool * share
    if total <= 0:
        out.append(make("need_recall", NOT_ENOUGH_AUDIT))
        return out
    recall = y_listed / total
    r_lo = y_listed / (y_listed + n_pool * q_hi) if y_listed > 0 else 0.0
    r_hi = y_listed / (y_listed + n_pool * q_lo) if y_listed + n_pool * q_lo > 0 else 1.0
    status = OK if r_hi - r_lo <= max_width else NOT_ENOUGH_AUDIT
    out.append(make("need_recall", status, *((recall, r_lo, r_hi) if status == OK else ())))
    return out


def estimate_need(
    visits: pd.DataFrame,
    pools: pd.DataFrame | None = None,
    attributes: Sequence[str] = (),
    as_of: object | None = None,
    *,
    stratum: str = "district",
    min_audit_visits: int = 30,
    min_listed_visits: int = 30,
    max_months: int = 12,
    max_width: float = 0.5,
    confidence: float = 0.95,
    method: str = "wilson",
) -> list[NeedEstimate]:
    """Need precision of the list, unlisted needy and need recall, overall and per group.

    visits: see the module docstring; pools: optional (as_of, <stratum>, n_unlisted) rows.
    For each estimate (overall, then each group of each attribute) the months ending at
    `as_of` (default: the latest visit month) are pooled newest first until the group has
    `min_audit_visits` reached audit visits and its unlisted and recall intervals are narrow
    enough (at most `max_months`); precision pools on its own, until the group has
    `min_listed_visits` reached listed visits. Returns three `NeedEstimate`s per group, in
    QUANTITIES order. `method`: a statsmodels `proportion_confint` method ("wilson", "beta").
    Raises ValueError on missing columns or selection probabilities outside (0, 1].
    """
    _check(visits, stratum)
    frame = visits.copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["_w"] = design_weights(frame, stratum)
    end = pd.Timestamp(as_of) if as_of is not None else frame["as_of"].max()
    all_months = frame["as_of"].unique()
    alpha = 1.0 - confidence
    limits = dict(alpha=alpha, method=method, min_audit=min_audit_visits,
                  min_listed=min_listed_visits, max_width=max_width)
    domains: list[tuple[str | None, str | None, pd.Series]] = [
        (None, None, pd.Series(True, index=frame.index))]
    for attr in attributes:
        labels = frame[attr].astype("string").fillna("(missing)")
        domains += [(attr, str(v), labels == v) for v in sorted(labels.unique())]
    reached_audit = frame["audit"].astype(bool) & frame["need"].notna()
    reached_listed = ~frame["audit"].astype(bool) & frame["need"].notna()
    out: list[NeedEstimate] = []
    for attr, group, in_group in domains:
        # precision pools only until the group has enough listed visits (usually one month)
        for k in range(1, max_months + 1):
            months = _months_back(all_months, end, k)
            sub = frame["as_of"].isin(months)
            last = k == max_months or len(months) < k
            if last or (reached_listed & in_group & sub).sum() >= min_listed_visits:
                labels = tuple(pd.Timestamp(m).date().isoformat() for m in months)
                precision = _estimates_for(
                    frame[sub], in_group[sub], attr, group, labels,
                    _uncovered(frame[sub], pools, stratum, months), stratum, **limits)[0]
                break
        found: list[NeedEstimate] = []
        for k in range(1, max_months + 1):
            months = _months_back(all_months, end, k)
            in_months = frame["as_of"].isin(months)
            enough = (reached_audit & in_group & in_months).sum() >= min_audit_visits
            last = k == max_months or len(months) < k  # no further month to pool
            if not enough and not last:
                continue
            sub = frame["as_of"].isin(months)
            labels = tuple(pd.Timestamp(m).date().isoformat() for m in months)
            found = _estimates_for(frame[sub], in_group[sub], attr, group, labels,
                                   _uncovered(frame[sub], pools, stratum, months), stratum,
                                   **limits)
            # enough audit visits but the unlisted or recall interval still too wide: pool
            # one more month
            if last or all(e.status == OK for e in found if e.quantity != "need_precision"):
                break
        out += [precision, *found[1:]]
    return out


def estimates_frame(estimates: Sequence[NeedEstimate]) -> pd.DataFrame:
    """The estimates as a table (one row each), for a report."""
    return pd.DataFrame([e.as_dict() for e in estimates])
