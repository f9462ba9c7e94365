"""Design-based need estimates (monitoring/estimates.py): hand-checked values, statuses, and
the coverage of the 95% intervals on synthetic populations with known truth.

`python tests/test_monitoring_estimates.py [draws]` prints the coverage table
(docs/monitoring-estimates.md quotes it).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from safetynet.monitoring.estimates import (
    NOT_ENOUGH_AUDIT,
    NOT_ENOUGH_LISTED,
    OK,
    design_weights,
    estimate_need,
    estimates_frame,
    weighted_share_interval,
)


def _by(estimates, quantity, attribute=None, group=None):
    (hit,) = [e for e in estimates if e.quantity == quantity and e.attribute == attribute
              and e.group == group]
    return hit


def _hand_visits() -> pd.DataFrame:
    """One month, two districts. A: 4 listed (3 in need), 2 audited of a pool of 100 (1 in
    need); B: 2 listed (1 in need, 1 unreachable), 2 audited of 50 (none in need)."""
    return pd.DataFrame({
        "as_of": ["2025-07-01"] * 10,
        "district": ["A"] * 6 + ["B"] * 4,
        "listed": [True] * 4 + [False] * 2 + [True] * 2 + [False] * 2,
        "audit": [False] * 4 + [True] * 2 + [False] * 2 + [True] * 2,
        "selection_prob": [1.0] * 4 + [0.02] * 2 + [1.0] * 2 + [0.04] * 2,
        "need": [1, 1, 1, 0, 1, 0, 1, np.nan, 0, 0],
        "elderly": [0, 0, 1, 1, 1, 0, 0, 0, 1, 0],
    })


def test_horvitz_thompson_point_estimates_by_hand():
    visits = _hand_visits()
    w = design_weights(visits)
    # B's listed cell: 2 selected, 1 reached -> weight 2; audit weights 1/0.02 and 1/0.04
    np.testing.assert_allclose(w.to_numpy(), [1, 1, 1, 1, 50, 50, 2, np.nan, 25, 25])
    est = estimate_need(visits, min_audit_visits=1, min_listed_visits=1, max_width=1.0)
    # precision: (3 + 2*1) / (4 + 2) = 5/6
    assert _by(est, "need_precision").value == pytest.approx(5 / 6)
    # unlisted needy: 50 (A's pool of 100, half in need) + 0
    assert _by(est, "unlisted_needy").value == pytest.approx(50.0)
    # recall: listed needy 3 + 2 = 5 of 5 + 50
    assert _by(est, "need_recall").value == pytest.approx(5 / 55)
    r = _by(est, "need_recall")
    assert r.low < r.value < r.high and r.status == OK
    # the elderly: two listed households (district A), one in need
    eld = estimate_need(visits, attributes=["elderly"], min_audit_visits=1,
                        min_listed_visits=1, max_width=1.0)
    assert _by(eld, "need_precision", "elderly", "1").value == pytest.approx(1 / 2)
    # unlisted elderly in need: A's audited elderly household (weight 50)
    assert _by(eld, "unlisted_needy", "elderly", "1").value == pytest.approx(50.0)
    assert _by(eld, "need_recall", "elderly", "1").value == pytest.approx(1 / 51)
    assert set(estimates_frame(eld)["quantity"]) == {"need_precision", "unlisted_needy",
                                                     "need_recall"}


def test_few_audit_visits_give_a_status_not_an_interval():
    est = estimate_need(_hand_visits())  # defaults: 30 visits each
    for q in ("unlisted_needy", "need_recall"):
        e = _by(est, q)
        assert e.status == NOT_ENOUGH_AUDIT and e.value is None and e.low is None
    assert _by(est, "need_precision").status == NOT_ENOUGH_LISTED


def test_a_zero_need_audit_does_not_claim_full_recall():
    """The demo's failure: an audit that found nobody in need reported recall 100%
    [1.8%, 100%]. Here the interval must leave room for the pool's need, or give a status."""
    rng = np.random.default_rng(3)
    n_list, n_audit, pool = 40, 30, 3000
    visits = pd.DataFrame({
        "as_of": "2025-07-01", "district": "A",
        "listed": [True] * n_list + [False] * n_audit,
        "audit": [False] * n_list + [True] * n_audit,
        "selection_prob": [1.0] * n_list + [n_audit / pool] * n_audit,
        "need": np.r_[(rng.random(n_list) < 0.4).astype(float), np.zeros(n_audit)],
    })
    r = _by(estimate_need(visits), "need_recall")
    assert r.status == NOT_ENOUGH_AUDIT or r.low < 0.5


def test_months_are_pooled_until_a_group_has_enough_audit_visits():
    frames = []
    for i, month in enumerate(["2025-05-01", "2025-06-01", "2025-07-01"]):
        frames.append(pd.DataFrame({
            "as_of": month, "district": "A", "listed": [True] * 20 + [False] * 12,
            "audit": [False] * 20 + [True] * 12, "selection_prob": [1.0] * 20 + [0.01] * 12,
            "need": ([1.0, 0.0] * 10) + [float(i == 0)] + [0.0] * 11,
        }))
    visits = pd.concat(frames, ignore_index=True)
    est = estimate_need(visits, min_audit_visits=30, min_listed_visits=30, max_width=1.0)
    r = _by(est, "need_recall")
    assert r.months == ("2025-07-01", "2025-06-01", "2025-05-01") and r.audit_visits == 36
    # 30 listed needy over three months; one audited needy household of weight 100
    assert r.value == pytest.approx(30 / 130)
    # one needy household in 36 audits leaves recall between about 6% and 63%: no headline
    assert _by(estimate_need(visits), "need_recall").status == NOT_ENOUGH_AUDIT
    short = estimate_need(visits, min_audit_visits=30, max_months=2)
    assert _by(short, "need_recall").status == NOT_ENOUGH_AUDIT
    # precision pools on its own: 20 listed visits a month reach 30 in two months, not three
    p = _by(est, "need_precision")
    assert p.months == ("2025-07-01", "2025-06-01") and p.value == pytest.approx(0.5)


def test_cells_without_audit_visits_are_left_out_and_counted():
    visits = _hand_visits()
    visits = visits[~(visits["audit"] & (visits["district"] == "B"))]
    pools = pd.DataFrame({"as_of": ["2025-07-01"] * 2, "district": ["A", "B"],
                          "n_unlisted": [100, 50]})
    est = estimate_need(visits, pools, min_audit_visits=1, min_listed_visits=1, max_width=1.0)
    r = _by(est, "need_recall")
    assert r.uncovered_cells == 1
    assert r.value == pytest.approx(3 / 53)  # district A only: 3 listed needy, 50 unlisted


def test_bad_input_is_refused():
    visits = _hand_visits()
    with pytest.raises(ValueError, match="selection_prob"):
        estimate_need(visits.assign(selection_prob=0.0))
    with pytest.raises(ValueError, match="lack columns"):
        estimate_need(visits.drop(columns="need"))


def test_weighted_share_interval_is_wilson_at_equal_weights():
    from statsmodels.stats.proportion import proportion_confint

    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=float)
    share, lo, hi = weighted_share_interval(y, np.full(10, 7.0))
    assert share == pytest.approx(0.2)
    assert (lo, hi) == pytest.approx(proportion_confint(2, 10, method="wilson"))


# --- coverage on synthetic populations -----------------------------------------------------

DISTRICT_NEED = (0.03, 0.05, 0.07, 0.10)


def synthetic_city(rng: np.random.Generator, months: int = 3, pool: int = 2500,
                   list_fraction: float = 0.05, audit_per_district: int = 40,
                   unreachable: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(visits, population): per month and district, `pool` households with need drawn at the
    district's rate (x1.6 for the elderly, 12%), a score that sees need but ranks the elderly
    lower, the top `list_fraction` listed, `audit_per_district` drawn at random from the rest."""
    pops, visits = [], []
    for m in range(months):
        as_of = pd.Timestamp("2025-01-01") + pd.DateOffset(months=m)
        for d, rate in enumerate(DISTRICT_NEED):
            elderly = rng.random(pool) < 0.12
            need = (rng.random(pool) < rate * np.where(elderly, 1.6, 1.0)).astype(float)
            score = 1.5 * need - 0.8 * elderly + rng.normal(size=pool)
            k = round(list_fraction * pool)
            listed = np.zeros(pool, bool)
            listed[np.argsort(-score)[:k]] = True
            unlisted = np.flatnonzero(~listed)
            audit = np.zeros(pool, bool)
            audit[rng.choice(unlisted, audit_per_district, replace=False)] = True
            pop = pd.DataFrame({"as_of": as_of, "district": f"D{d}", "listed": listed,
                                "audit": audit, "need": need, "elderly": elderly.astype(int)})
            pops.append(pop)
            v = pop[listed | audit].copy()
            v["selection_prob"] = np.where(v["listed"], 1.0, audit_per_district / len(unlisted))
            v["need"] = v["need"].where(rng.random(len(v)) >= unreachable)
            visits.append(v)
    return pd.concat(visits, ignore_index=True), pd.concat(pops, ignore_index=True)


def _truth(pop: pd.DataFrame, e) -> float:
    sub = pop[pop["as_of"].isin(pd.to_datetime(list(e.months)))]
    if e.attribute is not None:
        sub = sub[sub[e.attribute].astype(str) == e.group]
    listed_need = float(sub.loc[sub["listed"], "need"].sum())
    if e.quantity == "need_precision":
        return listed_need / int(sub["listed"].sum())
    unlisted = float(sub.loc[~sub["listed"], "need"].sum())
    return unlisted if e.quantity == "unlisted_needy" else listed_need / (listed_need + unlisted)


def coverage(draws: int, seed: int = 0, max_width: float = 0.5, **city) -> pd.DataFrame:
    """Per (quantity, attribute, group): share of draws whose interval covers the truth,
    share of draws with status ok, mean interval width (shares) over the ok draws."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(draws):
        visits, pop = synthetic_city(rng, **city)
        for e in estimate_need(visits, attributes=["elderly", "district"], max_width=max_width):
            if e.status == OK:
                t = _truth(pop, e)
                rows.append((e.quantity, e.attribute, e.group, True,
                             e.low - 1e-9 <= t <= e.high + 1e-9, e.high - e.low))
            else:
                rows.append((e.quantity, e.attribute, e.group, False, np.nan, np.nan))
    df = pd.DataFrame(rows, columns=["quantity", "attribute", "group", "ok", "covered",
                                     "width"])
    df["attribute"] = df["attribute"].fillna("(all)")
    df["group"] = df["group"].fillna("")
    return df.groupby(["quantity", "attribute", "group"], sort=False).agg(
        ok=("ok", "mean"), coverage=("covered", "mean"), width=("width", "mean"))


@pytest.mark.slow
def test_intervals_cover_the_truth_in_at_least_90_percent_of_draws():
    # every interval (no width guard): 40 audit visits per district and month, 1.7% of a pool
    table = coverage(draws=120, seed=1, max_width=1.0)
    assert (table.loc[["unlisted_needy", "need_recall"], "ok"] == 1).all()
    assert (table["coverage"] >= 0.9).all(), table


def test_too_small_audit_slices_pool_months_or_say_so():
    table = coverage(draws=20, seed=2, audit_per_district=3)  # 12 a month, as in the demo
    recall = table.loc["need_recall"]
    assert recall.loc[("elderly", "1"), "ok"] == 0.0  # about 4 elderly audits in 3 months
    assert recall.loc[("district", "D0"), "ok"] == 0.0  # 9 audits in 3 months
    assert 0.0 < recall.loc[("(all)", ""), "ok"] < 1.0  # 36 visits: ok when narrow enough
    assert (table["coverage"].dropna() >= 0.8).all(), table


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    pd.set_option("display.width", 120)
    for audit, width in ((40, 1.0), (40, 0.5), (3, 1.0), (3, 0.5)):
        print(f"\n{audit} audit visits per district and month, max_width {width}, {n} draws:")
        print(coverage(n, seed=1, max_width=width, audit_per_district=audit).round(3)
              .to_string())
