"""The audit slice's price and payoff: households in need reached vs. how well the office can
measure what its lists miss, for audit slices of 0 to 30 of a district's 60 monthly visits.

A synthetic city shaped like the demo city (issue 12's figures): 6 districts of 2,800
households not on assistance, unmet need 7.7% on average (5-11% by district), 10% elderly
people living alone with twice the need rate whom the score ranks lower (as the entry model
does), a score whose list of 60 has need precision of about 0.5. Each month every district
visits `capacity - a` households in score order and `a` drawn at random from the rest (the
audit slice); 5% of visits find nobody. After 12 months the report's estimates
(`monitoring.estimates.estimate_need`, the report's settings: 30 visits, width 0.5) are taken
at the latest month, pooling months back as the report does. Truth = the realised quantity
over the months pooled. No simulator truth is read (this city is generated here).

    .venv/bin/python benchmarks/bench_audit_size.py [--draws 60] [--seed 0]

Prints one row per audit size (medians over draws; shares over draws). Columns:
needy_per_month = households in need visited a month citywide (listed + audit),
lost = needy_per_month lost against no audit, recall_shown / elderly_shown / district_shown =
share of draws (districts: of district-draws) where the need recall is a value rather than
"not enough audit visits", recall_months = months pooled, recall_width = its 95% interval width,
recall_cover = share of shown intervals covering the truth, precision_width likewise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from safetynet.monitoring.estimates import OK, estimate_need

DISTRICT_NEED = (0.05, 0.06, 0.07, 0.08, 0.095, 0.11)
HOUSEHOLDS = 2800  # per district, not on assistance
CAPACITY = 60  # visits per district and month (20 x 3 caseworkers)
ELDERLY_SHARE, ELDERLY_NEED = 0.10, 2.0
SIGNAL, ELDERLY_PENALTY = 1.4, 1.1  # score = SIGNAL x need - PENALTY x elderly + N(0, 1)
UNREACHABLE = 0.05
MONTHS = 12
AUDIT_SIZES = (0, 2, 3, 6, 9, 12, 18, 30)


def month_of_visits(rng: np.random.Generator, as_of: pd.Timestamp, audit: int
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(visits, pools, truth rows) of one month: every district's list and audit slice."""
    visits, pools, truth = [], [], []
    for d, rate in enumerate(DISTRICT_NEED):
        elderly = rng.random(HOUSEHOLDS) < ELDERLY_SHARE
        base = rate / (1 + ELDERLY_SHARE * (ELDERLY_NEED - 1))  # keeps the district's rate
        need = rng.random(HOUSEHOLDS) < base * np.where(elderly, ELDERLY_NEED, 1.0)
        score = SIGNAL * need - ELDERLY_PENALTY * elderly + rng.normal(size=HOUSEHOLDS)
        order = np.argsort(-score)
        listed = np.zeros(HOUSEHOLDS, bool)
        listed[order[: CAPACITY - audit]] = True
        rest = np.flatnonzero(~listed)
        drawn = np.zeros(HOUSEHOLDS, bool)
        if audit:
            drawn[rng.choice(rest, audit, replace=False)] = True
        frame = pd.DataFrame({"as_of": as_of, "district": f"D{d}", "listed": listed,
                              "audit": drawn, "need": need.astype(float),
                              "elderly_living_alone": elderly.astype(int)})
        truth.append(frame)
        v = frame[listed | drawn].copy()
        v["selection_prob"] = np.where(v["listed"], 1.0, audit / len(rest) if audit else 1.0)
        v["need"] = v["need"].where(rng.random(len(v)) >= UNREACHABLE)
        visits.append(v)
        pools.append({"as_of": as_of, "district": f"D{d}", "n_unlisted": len(rest)})
    return pd.concat(visits), pd.DataFrame(pools), pd.concat(truth)


def _true(truth: pd.DataFrame, e) -> float:
    t = truth[truth["as_of"].isin(pd.to_datetime(list(e.months)))]
    if e.attribute is not None:
        t = t[t[e.attribute].astype(str) == e.group]
    listed = t.loc[t["listed"], "need"].sum()
    if e.quantity == "need_precision":
        return listed / t["listed"].sum()
    return listed / t["need"].sum()


def one_draw(rng: np.random.Generator, audit: int) -> dict[str, float]:
    months = [pd.Timestamp("2025-01-01") + pd.DateOffset(months=m) for m in range(MONTHS)]
    parts = [month_of_visits(rng, m, audit) for m in months]
    visits = pd.concat([p[0] for p in parts], ignore_index=True)
    pools = pd.concat([p[1] for p in parts], ignore_index=True)
    truth = pd.concat([p[2] for p in parts], ignore_index=True)
    visited = truth[truth["listed"] | truth["audit"]]
    out = {"needy_per_month": visited["need"].sum() / MONTHS,
           "listed_needy_per_month": truth.loc[truth["listed"], "need"].sum() / MONTHS}
    est = estimate_need(visits, pools, ["elderly_living_alone", "district"])
    by = {(e.quantity, e.attribute, e.group): e for e in est}
    r, p = by[("need_recall", None, None)], by[("need_precision", None, None)]
    eld = by[("need_recall", "elderly_living_alone", "1")]
    dist = [e for e in est if e.quantity == "need_recall" and e.attribute == "district"]
    out.update(
        recall_shown=float(r.status == OK),
        recall_months=len(r.months),
        recall_width=r.high - r.low if r.status == OK else np.nan,
        recall_cover=float(r.low <= _true(truth, r) <= r.high) if r.status == OK else np.nan,
        precision_width=p.high - p.low if p.status == OK else np.nan,
        elderly_shown=float(eld.status == OK),
        elderly_months=len(eld.months),
        elderly_width=eld.high - eld.low if eld.status == OK else np.nan,
        district_shown=float(np.mean([e.status == OK for e in dist])),
        district_months=float(np.median([len(e.months) for e in dist])),
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for audit in AUDIT_SIZES:
        rng = np.random.default_rng([args.seed, audit])
        draws = pd.DataFrame([one_draw(rng, audit) for _ in range(args.draws)])
        shares = ["recall_shown", "elderly_shown", "district_shown", "recall_cover"]
        row = {"audit_per_district": audit, "audit_share": audit / CAPACITY,
               **draws.drop(columns=shares).median().to_dict(), **draws[shares].mean().to_dict()}
        rows.append(row)
    table = pd.DataFrame(rows)
    table["lost"] = 1 - table["needy_per_month"] / table.loc[0, "needy_per_month"]
    cols = ["audit_per_district", "audit_share", "needy_per_month", "lost", "recall_shown",
            "recall_months", "recall_width", "recall_cover", "precision_width",
            "elderly_shown", "elderly_months", "elderly_width", "district_shown",
            "district_months"]
    pd.set_option("display.width", 200)
    print(f"{args.draws} draws of {MONTHS} months, 6 districts x {HOUSEHOLDS:,} households, "
          f"capacity {CAPACITY} a district ({time.perf_counter() - t0:.0f} s)")
    print(table[cols].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
