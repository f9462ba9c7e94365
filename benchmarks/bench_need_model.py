"""Benchmark: how should SafetyNet learn *need* from what an office has? (issue 12, item 3)

On a simulated city: the entry model (`safetynet train`'s recipe on the household table), then a
simulated office for the `--months` months before the test month: each month the listed visits
are the top `--capacity` of the cohort by the entry model's ranking (selection probability 1)
and a random audit samples `--audit-fraction` of the cohort among the unlisted (selection
probability = audits / unlisted); 5% of visits find nobody at home and are dropped; the visit
outcome is the truth's hardship state in the visit's month (as `safetynet simulate-visits`
answers). Methods compared on the test month's cohort (the entry model's out-of-time test):

- entry: the entry model alone (today);
- visit (w) / visit (u): LightGBM on the visit rows alone, weighted by 1/selection_prob or not;
- audit only: LightGBM on the audit rows alone;
- rank avg: mean of the entry and weighted visit models' ranks (the issue's reference);
- stack (w) / stack (u): z = a + b z_entry + c z_visit, (a, b, c) by logistic regression on
  the visit rows with cross-fitted z_visit (`training/need_model.py`, method "stack"),
  weighted by 1/selection_prob or not;
- offset (w) / offset (u): a visit booster boosted from the recalibrated entry margin as
  LightGBM `init_score` (method "offset"), weighted or not;
- ceiling: the same recipe trained on the truth's need label (not deployable).

Need figures come from `training/need.py:need_metrics` against `_truth_need`
(`training/evaluation.py`). `ms` = TreeSHAP time per household of every booster the method
needs (`training/model.py:explain_ms_per_row`, summed; the visit booster's leaves are capped to
what the entry model leaves of `--budget-ms`); `yield` = share of all visits (list plus audit,
the audit counted against the capacity) that find a household in need. Medians
over `--repeats` audit draws.

    nice -n 10 .venv/bin/python benchmarks/bench_need_model.py --city /tmp/n3/city \\
        --home /tmp/n3home --seed 42 --audit-fraction 0.01,0.02,0.05 --json OUT.json

Simulates the city (`--households`, `--seed`) and builds the features (ingest, `features
build` at monthly as-of dates 2024-01..2026-01, as safetynet/demo.py) when they are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

from safetynet.demo import month_starts

CAPACITY = 0.05
UNREACHABLE = 0.05
ATTRS = ("district", "urban_rural", "elderly_living_alone", "has_children")


def safetynet(home: Path, *args: str) -> None:
    env = {**os.environ, "SAFETYNET_HOME": str(home)}
    print("$ safetynet", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "safetynet.cli", *args], env=env, check=True)


def prepare(city: Path, home: Path, households: int, seed: int) -> Path:
    """Simulate the city and build the feature table if they are not there yet."""
    if not (city / "manifest.json").exists():
        safetynet(home, "simulate", "--households", str(households), "--months", "36",
                  "--start", "2023-01", "--seed", str(seed), "--out", str(city), "--format",
                  "parquet", "--no-progress")
    features = home / "features.parquet"
    if not features.exists():
        home.mkdir(parents=True, exist_ok=True)
        safetynet(home, "ingest", str(city), "--quiet")
        as_of = ",".join(d.isoformat() for d in month_starts(date(2024, 1, 1), date(2026, 1, 1)))
        safetynet(home, "features", "build", "--as-of", as_of, "--out", str(features),
                  "--threads", "2")
    return features


def load_table(city: Path, features: Path):
    """The household training table with `_truth_need` and `_visit_outcome` (the truth's
    hardship state in the as-of month, i.e. what a visit during that month finds)."""
    from safetynet.config import get_settings, load_policy
    from safetynet.training import household
    from safetynet.training.evaluation import (
        TRUTH_HARDSHIP_COLUMN,
        attach_truth_need,
        attach_truth_outcomes,
    )

    settings, policy = get_settings(), load_policy()
    data = household.load(settings, policy, features_path=features, truth_dir=city)
    frame = attach_truth_need(data.frame, city, settings.secret(),
                              policy.label.horizon_months)
    # the truth is aligned to the month completed by the as-of date; a visit during the
    # as-of month sees that month's state: align one month later
    keys = frame[["household_key", "as_of_date"]].copy()
    keys["as_of_date"] = pd.to_datetime(keys["as_of_date"]) + pd.DateOffset(months=1)
    seen = attach_truth_outcomes(keys, city, settings.secret(), policy.label.horizon_months)
    frame["_visit_outcome"] = seen[TRUTH_HARDSHIP_COLUMN].to_numpy()
    return frame, data.spec, policy


def run_pipeline(frame, spec, policy, trials: int, budget_ms: float, label: str):
    """`safetynet train`'s evaluated recipe (no refit): (booster, test row index)."""
    from safetynet.training.pipeline import config_from_policy, run

    cfg = config_from_policy(policy, n_trials=trials or policy.training.n_trials,
                             compare_unconstrained=False, refit=False,
                             explain_budget_ms=budget_ms, num_threads=2)
    t0 = time.perf_counter()
    res = run(frame.assign(label=frame[label].astype(int)), spec, cfg)
    print(f"  {label}: trained in {time.perf_counter() - t0:.0f} s, test "
          f"{res.folds[-1].get('test_start')}, {res.eval_booster.num_trees()} trees", flush=True)
    return res.eval_booster, res.test_index


def simulate_office(frame: pd.DataFrame, entry_margin: np.ndarray, months: list,
                    audit: float, rng: np.random.Generator) -> pd.DataFrame:
    """Visit rows (index into frame, selection_prob, kind) for the given as-of months."""
    dates = pd.to_datetime(frame["as_of_date"]).to_numpy()
    rows = []
    for month in months:
        idx = np.flatnonzero(dates == np.datetime64(month))
        n = len(idx)
        order = np.lexsort((rng.random(n), -entry_margin[idx]))  # ties broken at random
        k = round(CAPACITY * n)
        listed, rest = idx[order[:k]], idx[order[k:]]
        n_audit = round(audit * n)
        audited = rng.choice(rest, n_audit, replace=False)
        rows.append(pd.DataFrame({"row": listed, "p": 1.0, "kind": "listed"}))
        rows.append(pd.DataFrame({"row": audited, "p": n_audit / len(rest), "kind": "audit"}))
    visits = pd.concat(rows, ignore_index=True)
    reached = rng.random(len(visits)) >= UNREACHABLE
    return visits[reached].reset_index(drop=True)


def ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank(method="average").to_numpy() / len(x)


def visit_yield(score: np.ndarray, need: np.ndarray, audit: float) -> float:
    """Share of the month's visits (top capacity - audit listed, audit drawn at random from the
    rest) that find need: the office's return with the audit counted against capacity."""
    from safetynet.training.need import listing_weights

    n = len(score)
    k_total = round(CAPACITY * n)
    k_list = round((CAPACITY - audit) * n)
    w = listing_weights(score, k_list)
    found = float(np.dot(w, need))
    rest_rate = float(np.dot(1 - w, need) / max(n - k_list, 1))
    return (found + (k_total - k_list) * rest_rate) / k_total


def evaluate(score, need, groups, audit: float) -> dict[str, float]:
    from safetynet.training.need import need_metrics

    m = need_metrics(score, need, groups, fractions=(CAPACITY,), attributes=ATTRS, prefix="")
    out = {"precision": m["need_precision_at_5pct"], "recall": m["need_recall_at_5pct"]}
    out.update({f"ratio_{a}": m.get(f"need_recall_ratio_min_{a}", float("nan")) for a in ATTRS})
    out["yield"] = visit_yield(score, need, audit)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city", type=Path, required=True, help="simulated city (made if missing)")
    ap.add_argument("--home", type=Path, required=True, help="SAFETYNET_HOME for the store")
    ap.add_argument("--households", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42, help="city seed (when simulating)")
    ap.add_argument("--audit-fraction", default="0.01,0.02,0.05",
                    help="audit visits per month as shares of the cohort, comma-separated")
    ap.add_argument("--months", type=int, default=12, help="visit months before the test")
    ap.add_argument("--repeats", type=int, default=3, help="audit draws (medians reported)")
    ap.add_argument("--trials", type=int, default=None,
                    help="search trials per pipeline fit (default: policy [training] n_trials)")
    ap.add_argument("--budget-ms", type=float, default=0.5, help="explanation budget per "
                    "household for everything a method serves")
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    args = ap.parse_args()
    audits = [float(a) for a in args.audit_fraction.split(",")]
    if any(not 0 < a <= CAPACITY for a in audits):
        raise SystemExit(f"--audit-fraction values must be in (0, {CAPACITY}]")
    os.environ["SAFETYNET_HOME"] = str(args.home)
    features = prepare(args.city, args.home, args.households, args.seed)

    from safetynet.training.model import explain_ms_per_row
    from safetynet.training.need import need_audit_groups
    from safetynet.training.need_model import (
        fit_need_model,
        fit_visit_booster,
        leaf_budget_for,
    )

    t0 = time.perf_counter()
    frame, spec, policy = load_table(args.city, features)
    names = list(spec.features)
    X = frame[names].to_numpy(dtype=np.float32, na_value=np.nan)
    print(f"table: {len(frame):,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
    entry, test = run_pipeline(frame, spec, policy, args.trials, args.budget_ms, "label")
    have_need = frame["_truth_need"].notna().to_numpy()
    ceil_frame = frame[have_need].reset_index(drop=True)
    ceiling, ceil_test = run_pipeline(ceil_frame, spec, policy, args.trials, args.budget_ms,
                                      "_truth_need")
    z_entry = entry.predict(X, raw_score=True)
    test_month = pd.Timestamp(frame["as_of_date"].iloc[test[0]])
    Xt = X[test]
    need = frame["_truth_need"].iloc[test].to_numpy(dtype=np.float64, na_value=np.nan)
    groups = need_audit_groups(frame.iloc[test].reset_index(drop=True), ATTRS)
    entry_ms = explain_ms_per_row(entry, Xt)
    ceil_ms = explain_ms_per_row(ceiling, ceil_frame[names].to_numpy(np.float32, np.nan)[
        ceil_test])
    ceil_score = ceiling.predict(ceil_frame[names].to_numpy(np.float32, np.nan)[ceil_test],
                                 raw_score=True)
    ceil_need = ceil_frame["_truth_need"].iloc[ceil_test].to_numpy(np.float64)
    ceil_groups = need_audit_groups(ceil_frame.iloc[ceil_test].reset_index(drop=True), ATTRS)
    # the visit booster gets what the entry model leaves of the budget (80%: timing noise)
    visit_budget = int(0.8 * leaf_budget_for(max(args.budget_ms - entry_ms, 0.02)))
    months = [test_month - pd.DateOffset(months=i) for i in range(args.months, 0, -1)]
    visit_y = frame["_visit_outcome"]
    households = frame["household_key"].to_numpy()

    results = []
    for audit in audits:
        ceil_m = evaluate(ceil_score, ceil_need, ceil_groups, audit)
        results.append({"method": "ceiling", "audit": audit, "repeat": 0, "ms": ceil_ms,
                        **ceil_m})
        for rep in range(args.repeats):
            rng = np.random.default_rng([args.seed, int(audit * 1e4), rep])
            v = simulate_office(frame, z_entry, months, audit, rng)
            v = v[visit_y.iloc[v["row"]].notna().to_numpy()].reset_index(drop=True)
            r = v["row"].to_numpy()
            Xv, yv, pv = X[r], visit_y.iloc[r].to_numpy(dtype=np.float64), v["p"].to_numpy()
            hv, zv = households[r], z_entry[r]
            kw = dict(households=hv, leaf_budget=visit_budget, seed=rep, feature_names=names)
            scores: dict[str, tuple[np.ndarray, list]] = {"entry": (z_entry[test], [entry])}
            vw = fit_visit_booster(Xv, yv, pv, weighted=True, **kw)
            scores["visit (w)"] = (vw.predict(Xt, raw_score=True), [vw])
            vu = fit_visit_booster(Xv, yv, pv, weighted=False, **kw)
            scores["visit (u)"] = (vu.predict(Xt, raw_score=True), [vu])
            a = (v["kind"] == "audit").to_numpy()
            va = fit_visit_booster(Xv[a], yv[a], pv[a], weighted=True,
                                   **{**kw, "households": hv[a]})
            scores["audit only"] = (va.predict(Xt, raw_score=True), [va])
            scores["rank avg"] = (ranks(z_entry[test]) + ranks(scores["visit (w)"][0]),
                                  [entry, vw])
            for name, method, weighted in (("stack (w)", "stack", True),
                                           ("stack (u)", "stack", False),
                                           ("offset (w)", "offset", True),
                                           ("offset (u)", "offset", False)):
                nm = fit_need_model(zv, Xv, yv, pv, method=method, weighted=weighted, **kw)
                scores[name] = (nm.margin(z_entry[test], Xt),
                                [entry] + ([nm.visit_booster] if not nm.cold_start else []))
            for name, (score, boosters) in scores.items():
                ms = sum(explain_ms_per_row(b, Xt) for b in boosters)
                results.append({"method": name, "audit": audit, "repeat": rep, "ms": ms,
                                "visits": len(v), "audits": int(a.sum()),
                                **evaluate(score, need, groups, audit)})
            print(f"  audit {audit:.0%} draw {rep}: {len(v):,} visits ({int(a.sum()):,} "
                  f"audits), {time.perf_counter() - t0:.0f} s", flush=True)

    table = pd.DataFrame(results)
    cols = ["precision", "recall", *[f"ratio_{a}" for a in ATTRS], "yield", "ms"]
    med = table.groupby(["audit", "method"], sort=False)[cols].median().reset_index()
    ceiling_p = med.loc[med["method"] == "ceiling", "precision"].iloc[0]
    med["of_ceiling"] = med["precision"] / ceiling_p
    print(f"\ncity {args.city} (seed {args.seed}), test month {test_month:%Y-%m}: "
          f"{len(test):,} households in the cohort, {int(np.nansum(need)):,} in need; "
          f"{args.months} visit months, capacity {CAPACITY:.0%}, medians of {args.repeats} "
          f"audit draws; entry model {entry_ms:.3f} ms")
    header = (f"{'audit':>5} {'method':<11} {'P@5%':>6} {'R@5%':>6} {'district':>8} "
              f"{'urb/rur':>7} {'elderly':>7} {'children':>8} {'yield':>6} {'ms':>6} "
              f"{'ceiling':>7}")
    print(header)
    for _, r in med.iterrows():
        print(f"{r['audit']:>5.0%} {r['method']:<11} {r['precision']:>6.3f} {r['recall']:>6.3f} "
              f"{r['ratio_district']:>8.2f} {r['ratio_urban_rural']:>7.2f} "
              f"{r['ratio_elderly_living_alone']:>7.2f} {r['ratio_has_children']:>8.2f} "
              f"{r['yield']:>6.3f} {r['ms']:>6.3f} {r['of_ceiling']:>7.0%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "city": str(args.city), "seed": args.seed, "test_month": f"{test_month:%Y-%m}",
            "cohort": len(test), "in_need": int(np.nansum(need)),
            "months": args.months, "capacity": CAPACITY, "repeats": args.repeats,
            "entry_ms": entry_ms, "visit_leaf_budget": visit_budget,
            "budget_ms": args.budget_ms, "trials": args.trials,
            "medians": med.to_dict(orient="records"), "runs": results}, indent=1,
            default=float), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
