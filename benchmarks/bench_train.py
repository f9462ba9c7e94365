"""Benchmark: `safetynet train` on 1,000,000 household-months x ~80 features, search included.

Synthesizes a table of the feature store's shape with a realistic (nonlinear, partly observed)
signal, then runs the whole training run as `safetynet train` does it - temporal folds, the
budgeted Optuna search, the unconstrained comparison search, baselines, calibration, fairness,
plots, MLflow logging and registration - and reports wall time per stage against the
15-minute target. Writes benchmarks/results/bench_train.md.

    .venv/bin/python benchmarks/bench_train.py [--households 27778 --months 36 --features 80]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

# as `safetynet train` does, before LightGBM loads (docs/training.md, "Search cost")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from safetynet.config import Settings, load_policy
from safetynet.training.pipeline import TRUTH_COLUMN, TableSpec, config_from_policy
from safetynet.training.synthetic import AUDIT, household_table
from safetynet.training.train import train_and_log

TARGET_SECONDS = 15 * 60


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=27_778)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--features", type=int, default=80)
    ap.add_argument("--trials", type=int, default=None, help="default: policy [training]")
    ap.add_argument("--threads", type=int, default=None,
                    help="LightGBM threads (default: policy [training] num_threads); 1 gives "
                         "comparable CPU seconds on a shared machine")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" /
                    "bench_train.md")
    args = ap.parse_args()

    t0 = time.perf_counter()
    frame = household_table(args.households, args.months, args.features, seed=7,
                            base_logit=-4.2).rename(columns={"truth_prob": TRUTH_COLUMN})
    t_data = time.perf_counter() - t0
    n_feat = sum(c.startswith("f_") for c in frame.columns)
    spec = TableSpec(label="label", entity="household_key", time="as_of_date", audit=AUDIT,
                     group="district", indicators=[c for c in frame if c.startswith("ind_")],
                     pmt_features=["f_income_pc", "f_household_size", "f_dependency_ratio",
                                   "f_assets_score"])
    policy = load_policy()
    overrides: dict[str, int] = {"n_trials": args.trials} if args.trials else {}
    if args.threads:
        overrides["num_threads"] = args.threads
    cfg = config_from_policy(policy, **overrides)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        t1, c1 = time.perf_counter(), time.process_time()
        out = train_and_log(frame, spec, cfg, settings=settings, promotion=policy.promotion,
                            model_name="bench", description="synthetic benchmark table")
        total = time.perf_counter() - t1
        cpu = time.process_time() - c1
    m = out.result.metrics
    rows = [
        ("rows x features", f"{len(frame):,} x {n_feat + 3} (incl. 3 indicator flags)"),
        ("machine", f"{os.cpu_count()} cores, {platform.python_version()}, "
                    f"load avg {os.getloadavg()[0]:.1f} at the end"),
        ("search trials (budgeted + unconstrained)", f"{cfg.search.n_trials} + "
         f"{cfg.search.n_trials if cfg.compare_unconstrained else 0}, "
         f"search rows <= {cfg.search.search_max_rows or 0:,}, "
         f"LightGBM threads {cfg.search.num_threads}"),
        ("budgeted search (s)", f"{m.get('time_search_seconds', float('nan')):.0f}"),
        ("unconstrained search (s)", f"{m.get('time_unconstrained_search_seconds', 0):.0f}"),
        ("refit of the registered model on the latest labels (s)",
         f"{m.get('time_refit_seconds', float('nan')):.0f}"),
        ("experiment total: search, folds, baselines, calibration, audit, refit (s)",
         f"{m.get('time_total_seconds', float('nan')):.0f}"),
        ("train_and_log total incl. plots and MLflow (s)", f"{total:.0f}"),
        ("CPU time of the run, all threads (s)", f"{cpu:.0f} (= {cpu / 2:.0f} s of 2 cores; "
         "the load-independent figure on a shared machine)"),
        ("target (s)", f"{TARGET_SECONDS} -> {'MET' if total <= TARGET_SECONDS else 'MISSED'}"),
        ("data synthesis (s, not counted)", f"{t_data:.0f}"),
        ("rows: final fold fit / refit (registered model)",
         f"{m.get('fold' + str(cfg.n_folds - 1) + '_fit_rows', float('nan')):,.0f} / "
         f"{m.get('refit_rows', float('nan')):,.0f}"),
        ("evaluated model: trees / explain_ms_per_row (1 core)",
         f"{m['eval_n_trees']:.0f} / {m['eval_explain_ms_per_row']:.3f}"),
        ("registered model: trees / explain_ms_per_row (1 core)",
         f"{m['n_trees']:.0f} / {m['explain_ms_per_row']:.3f}"),
        ("unconstrained trees / explain ms", f"{m.get('unconstrained_n_trees', float('nan')):.0f}"
         f" / {m.get('unconstrained_explain_ms_per_row', float('nan')):.3f}"),
        ("test precision@5% (budgeted / unconstrained)",
         f"{m['test_precision_at_5pct']:.4f} / "
         f"{m.get('test_unconstrained_precision_at_5pct', float('nan')):.4f}"),
        ("test precision@5% best baseline", f"{m['test_baseline_best_precision_at_5pct']:.4f}"),
        ("test precision@5% oracle / efficiency",
         f"{m.get('test_oracle_precision_at_5pct', float('nan')):.4f} / "
         f"{m.get('test_efficiency_at_5pct', float('nan')):.3f}"),
        ("test ROC AUC / AP / Brier", f"{m['test_roc_auc']:.4f} / "
         f"{m['test_average_precision']:.4f} / {m['test_brier']:.4f}"),
    ]
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"| {k:{width}} | {v} |" for k, v in rows)
    table = f"| {'measure':{width}} | value |\n|{'-' * (width + 2)}|---|\n{text}"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# bench_train: training on ~1M household-months\n\n"
        f"Command: `.venv/bin/python benchmarks/bench_train.py --households {args.households} "
        f"--months {args.months} --features {args.features}"
        f"{f' --threads {args.threads}' if args.threads else ''}`\n\n{table}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
