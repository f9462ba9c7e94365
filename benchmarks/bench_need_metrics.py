"""Benchmark: need metrics of the entry model and the best baseline, and what the calibration
does to them (issue 12, items 1 and 7).

Runs `training.pipeline.run` exactly as `safetynet train --truth` does (policy settings, the
household table of `training/household.py`, `--trials`, no unconstrained search) once with
scikit-learn's flat isotonic steps (the recipe before issue 12) and once with the raw order
kept inside the steps (`RunConfig.order_within_steps`), for each search seed, and prints the
medians over seeds:

- need precision / recall at 1, 5, 10% and the need-recall ratios of the audited attributes,
  for the model, the best baseline and the onset oracle (final test month); also the need
  recall of the simulator's own `elderly_alone` household type (the audited
  `elderly_living_alone` is the registry flag an office has: a single person aged 60+);
- distinct calibrated scores on the test month and in its top 5%;
- calibration: mean predicted vs observed on the test month and on the calibration slice,
  the observed label rate per as-of month, and the reliability deciles of the test month.

    SAFETYNET_HOME=H nice -n 10 .venv/bin/python benchmarks/bench_need_metrics.py \\
        --features H/features.parquet --truth CITY [--trials 6] [--seeds 0,1,2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from safetynet.config import get_settings, load_policy
from safetynet.training import household
from safetynet.training.calibration import reliability_curve
from safetynet.training.need import need_recall_by_group, recall_ratio_min
from safetynet.training.pipeline import (
    TRUTH_ELDERLY_ALONE_COLUMN,
    TRUTH_NEED_COLUMN,
    config_from_policy,
    run,
)
from safetynet.training.splits import to_periods

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

NEED_KEYS = [f"need_{w}_at_{p}" for p in ("1pct", "5pct", "10pct")
             for w in ("precision", "recall")]


def one_run(data: household.HouseholdData, cfg, ordered: bool) -> dict[str, float]:
    """Metrics of one pipeline run plus calibration and tie diagnostics."""
    result = run(data.frame, data.spec, replace(cfg, order_within_steps=ordered))
    m = dict(result.metrics)
    tf = result.test_frame
    score, y = tf["score"].to_numpy(), tf["label"].to_numpy(dtype=float)
    top = np.sort(score)[::-1][: int(np.ceil(0.05 * len(score)))]
    m["distinct_scores_test"] = float(len(np.unique(score)))
    m["distinct_scores_top5pct"] = float(len(np.unique(top)))
    m["test_mean_predicted"] = float(score.mean())
    m["test_observed_rate"] = float(y.mean())
    periods = to_periods(data.frame[data.spec.time])
    fold = result.folds[-1]
    valid = data.frame[(data.frame[data.spec.time] >= pd.Timestamp(fold["valid_start"]))
                       & (periods <= periods[result.test_index].min() - cfg.horizon - 1)]
    m["calibration_slice_observed_rate"] = float(valid["label"].mean())
    mean_p, rate, _ = reliability_curve(score, y, n_bins=10)
    m["reliability_top_decile_predicted"] = float(mean_p[-1])
    m["reliability_top_decile_observed"] = float(rate[-1])
    test = data.frame.iloc[result.test_index].reset_index(drop=True)
    types = pd.DataFrame({"type": test[TRUTH_ELDERLY_ALONE_COLUMN]})
    by_type = need_recall_by_group(score, test[TRUTH_NEED_COLUMN], types, cfg.capacity_fraction,
                                   cfg.fairness.min_group_positives)
    m["truth_type_elderly_alone_need_recall"] = float(
        by_type.loc[by_type["group"] == "1", "recall"].iloc[0])
    m["truth_type_elderly_alone_need_ratio"] = recall_ratio_min(by_type)["type"]
    m["_reliability"] = list(zip(mean_p.round(4).tolist(), rate.round(4).tolist(), strict=True))
    m["_valid"] = f"{fold['valid_start']}..{fold['valid_end']}"
    m["_test"] = f"{fold['test_start']}..{fold['test_end']}"
    m["_best_baseline"] = result.params.get("best_baseline", "")
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    settings, policy = get_settings(), load_policy()
    data = household.load(settings, policy, args.features, None, args.truth)
    rates = data.frame.groupby(data.frame["as_of_date"].dt.strftime("%Y-%m"))["label"].mean()
    runs: dict[str, list[dict]] = {"flat": [], "ordered": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = config_from_policy(policy, n_trials=args.trials, seed=seed,
                                 compare_unconstrained=False)
        for name in runs:
            runs[name].append(one_run(data, cfg, ordered=name == "ordered"))

    def med(name: str, key: str) -> float:
        vals = [r.get(key, np.nan) for r in runs[name]]
        return float(np.nanmedian(vals)) if np.isfinite(vals).any() else float("nan")

    attrs = list(policy.fairness.need_audit_attributes)
    rows = [(k, [f"test_{k}"], [f"test_baseline_best_{k}"], [f"test_oracle_{k}"])
            for k in [*NEED_KEYS, *(f"need_recall_ratio_min_{a}" for a in attrs)]]
    first = runs["ordered"][0]
    print(f"test {first['_test']}, calibration slice {first['_valid']}, "
          f"seeds {args.seeds}, {args.trials} trials; best baseline "
          f"{sorted({r['_best_baseline'] for r in runs['ordered']})}; medians over seeds\n")
    print(f"| {'metric':42s} | model, flat isotonic | model, ordered steps | best baseline "
          "| onset oracle |")
    print("|---|---|---|---|---|")
    for label, model, base, oracle in rows:
        print(f"| {label:42s} | {med('flat', model[0]):.3f} | {med('ordered', model[0]):.3f} "
              f"| {med('ordered', base[0]):.3f} | {med('ordered', oracle[0]):.3f} |")
    for key in ("truth_type_elderly_alone_need_recall", "truth_type_elderly_alone_need_ratio",
                "test_precision_at_5pct", "test_precision_at_1pct", "test_roc_auc",
                "distinct_scores_test", "distinct_scores_top5pct", "test_mean_predicted",
                "test_observed_rate", "calibration_slice_observed_rate",
                "reliability_top_decile_predicted", "reliability_top_decile_observed",
                "test_brier"):
        print(f"| {key:42s} | {med('flat', key):.4f} | {med('ordered', key):.4f} | | |")
    print("\nobserved label rate by as-of month:",
          ", ".join(f"{k} {v:.4f}" for k, v in rates.dropna().items()))
    print("reliability deciles of the test month (ordered, seed 1st): (predicted, observed)",
          first["_reliability"])
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "label_rate_by_month": rates.to_dict()},
                                        indent=1, default=str))


if __name__ == "__main__":
    main()
