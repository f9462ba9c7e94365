"""Benchmark: does the closed loop learn need, and do its estimates tell the truth? (issue 12,
item 6)

K monthly cycles on a simulated city, every step through the real CLI (as safetynet/demo.py
runs it, one SAFETYNET_HOME): `safetynet monitor` (scores, worklists filled to each district's
capacity with the random audit slice and stored selection probabilities) -> `simulate-visits`
(the truth answers listed and audit visits) -> `feedback import` -> `report` (design-based need
estimates, `need` block of report-*.json) -> `train` (retrain with the feedback) -> `promote`
(the gate; a refused challenger leaves the champion in place). Because it calls the CLI,
whatever `safetynet train` learns from (entries, feedback labels, a visit/audit model) is what
this benchmark measures, with no change here.

Setup: simulate a city, ingest it, build features at every monthly as-of date, train and
promote the first model (the gate's refusal of the very first model is overridden with a
recorded reason, as the demo does). Then a simulated office runs `--audit-months` M months of
monitor + visits + feedback with that model (no retraining) before the first cycle.

Timeline (month starts; H = the policy's label horizon, 6): the city starts 2022-01; features
from its 13th month (a year of history behind every row); the first model is trained on the
feature rows of the 20 months before the first audit month; then M audit months, then K
cycles; the city runs H months past the last cycle so the truth's need label (in hardship at
the as-of month or within H months, not assisted: `training/evaluation.py:attach_truth_need`)
is defined for every cycle. Every `train` gets the feature rows up to the month just
monitored (never a later as-of date). Labels come from the store as `safetynet train` builds
them: the city is ingested once, so the entry labels of the last H months before a training
date use entries after it (a simplification of monthly deliveries; said in the output).

Per cycle (JSON "cycles"): as_of, listed, audited, model_version, true need precision (share of
listed, non-audit households with truth need) and recall (listed needy / needy in the scored
cohort), the report's estimates for that run (per-run row: months pooled back from the run)
with 95% intervals or the status, the group need-recall ratios (lowest / best, groups with
>= 30 needy; `training/need.py`), and whether each interval covers the truth. Diagnostics: the
truth of what the estimate measures (hardship at the visit month among listed, and among
listed + unlisted unsuppressed), the gate's decision.

    nice -n 10 .venv/bin/python benchmarks/bench_loop.py --households 20000 --cycles 6 \\
        --seed 42 --audit-months 12 --json benchmarks/results/bench_loop.json

Writes the JSON, a table (stdout and OUT.md) and a plot (OUT.png) of true vs estimated
precision and recall per cycle.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

CITY_START = date(2022, 1, 1)
FEATURE_LAG_MONTHS = 12  # features from the city's 13th month: a year of history per row
FIRST_TRAIN_MONTHS = 20  # feature months behind the first model (3 temporal folds need 18)
VISIT_DAY = 20  # visits happen on this day of the as-of month
COVERAGE_TARGET = 5 / 6
ATTRIBUTES = ("district", "urban_rural", "elderly_living_alone", "has_children",
              "has_disabled_member", "head_age_band")


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m + 1, 1)


@dataclass(frozen=True)
class Timeline:
    """Month starts of the run. `months`: length of the simulated city."""

    features: list[date]
    first_train_until: date
    audit_months: list[date]
    cycles: list[date]
    months: int

    @classmethod
    def plan(cls, audit_months: int, cycles: int, horizon: int) -> Timeline:
        first_feature = add_months(CITY_START, FEATURE_LAG_MONTHS)
        first_audit = add_months(first_feature, FIRST_TRAIN_MONTHS)
        audits = [add_months(first_audit, i) for i in range(audit_months)]
        first_cycle = add_months(first_audit, audit_months)
        cyc = [add_months(first_cycle, i) for i in range(cycles)]
        last = cyc[-1]
        n_features = (last.year - first_feature.year) * 12 + last.month - first_feature.month + 1
        features = [add_months(first_feature, i) for i in range(n_features)]
        # as-of month m: truth month g = m - 1 needs months g+1..g+horizon simulated
        months = (last.year - CITY_START.year) * 12 + last.month - CITY_START.month + horizon
        return cls(features, add_months(first_audit, -1), audits, cyc, months)


@dataclass
class Cli:
    """Runs `safetynet ...` in a subprocess on one home; logs every step."""

    home: Path
    log: Path
    in_process: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYNET_")}
        return {**env, "SAFETYNET_HOME": str(self.home)}

    def _invoke(self, args: tuple[str, ...]) -> subprocess.CompletedProcess:
        """The same typer app in this process (imports paid once; for the quick test)."""
        from typer.testing import CliRunner

        from safetynet.cli import app

        res = CliRunner().invoke(app, list(args))
        err = res.stderr if res.stderr_bytes is not None else ""
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            err += "".join(traceback.format_exception(res.exception))
        return subprocess.CompletedProcess(args, res.exit_code, res.stdout, err)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        t0 = time.perf_counter()
        proc = (self._invoke(args) if self.in_process else subprocess.run(
            [sys.executable, "-m", "safetynet.cli", *args], env=self.env(), text=True,
            capture_output=True))
        seconds = time.perf_counter() - t0
        with self.log.open("a") as fh:
            fh.write(f"\n$ safetynet {' '.join(args)}\n(exit {proc.returncode}, "
                     f"{seconds:.1f} s)\n{proc.stdout}\n{proc.stderr}\n")
        self.steps.append({"command": args[0] if args[0] != "features" else "features build",
                           "seconds": round(seconds, 1), "exit": proc.returncode})
        print(f"  $ safetynet {_short(args)}  ({seconds:.0f} s, exit {proc.returncode})",
              flush=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"bench_loop: `safetynet {args[0]}` failed (exit "
                             f"{proc.returncode}); see {self.log}\n{proc.stderr[-2000:]}")
        return proc


def _short(args: tuple[str, ...]) -> str:
    return " ".join(a if len(a) < 60 else a[:25] + "..." + a[-20:] for a in args)


# --- the loop -------------------------------------------------------------------------------


def setup(cli: Cli, tl: Timeline, households: int, seed: int, trials: int) -> Path:
    """Simulate, ingest, build features at every as-of date, first train + promote."""
    city = cli.home / "city"
    features = cli.home / "features.parquet"
    cli.run("simulate", "--households", str(households), "--months", str(tl.months),
            "--start", f"{CITY_START:%Y-%m}", "--seed", str(seed), "--out", str(city),
            "--format", "parquet", "--no-progress")
    cli.run("ingest", str(city), "--quiet")
    cli.run("features", "build", "--as-of", ",".join(d.isoformat() for d in tl.features),
            "--out", str(features))
    train(cli, features, city, tl.first_train_until, trials)
    refused = cli.run("promote", check=False).returncode != 0
    if refused:
        cli.run("promote", "--override", "bench_loop: the first model is needed to start the "
                "loop; the gate's findings are recorded on the model version")
    return features


def train(cli: Cli, features: Path, city: Path, until: date, trials: int) -> str | None:
    """`safetynet train` on the feature rows with as-of <= until; the registered version."""
    table = pd.read_parquet(features)
    upto = cli.home / "train-features.parquet"
    table[pd.to_datetime(table["as_of_date"]) <= pd.Timestamp(until)].to_parquet(upto)
    proc = cli.run("train", "--features", str(upto), "--truth", str(city),
                   "--no-compare-unconstrained", "--trials", str(trials))
    found = re.search(r"registered \S+ v(\d+) as challenger", proc.stdout)
    return found.group(1) if found else None


def office_month(cli: Cli, as_of: date, features: Path, city: Path, seed: int) -> None:
    """monitor -> simulate-visits -> feedback import for one month."""
    cli.run("monitor", "--as-of", as_of.isoformat(), "--features", str(features),
            "--seed", str(seed))
    visits = cli.home / "visits" / f"visits-{as_of:%Y-%m}.csv"
    cli.run("simulate-visits", "--as-of", as_of.isoformat(), "--visit-date",
            as_of.replace(day=VISIT_DAY).isoformat(), "--city", str(city), "--out", str(visits),
            "--seed", str(seed + as_of.year * 12 + as_of.month))
    cli.run("feedback", "import", str(visits))


def report(cli: Cli) -> dict[str, Any]:
    proc = cli.run("report")
    found = re.search(r"and (\S+\.json)\s*$", proc.stdout.strip())
    if not found:
        raise SystemExit(f"bench_loop: no report JSON named in the output of `safetynet report`"
                         f"; see {cli.log}")
    return json.loads(Path(found.group(1)).read_text())


# --- truth and estimates --------------------------------------------------------------------


def run_frame(engine, features: Path, as_of: date) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The scored cohort of the run at `as_of`: household_key, as_of_date, suppressed, model
    version, listed / audit (worklist items), and the group attributes of the feature rows."""
    import sqlalchemy as sa

    from safetynet.db.tables import score_history, worklist_items

    run_id = as_of.isoformat()
    with engine.connect() as conn:
        scored = pd.read_sql(sa.select(score_history).where(score_history.c.run_id == run_id),
                             conn)
        items = pd.read_sql(sa.select(worklist_items.c.household_key, worklist_items.c.audit)
                            .where(worklist_items.c.run_id == run_id), conn)
    if scored.empty:
        raise SystemExit(f"bench_loop: no scores stored for the run of {run_id}")
    items["audit"] = items["audit"].astype(bool)
    frame = scored.merge(items, on="household_key", how="left")
    frame["audit"] = frame["audit"].astype("boolean").fillna(False).astype(bool)
    frame["listed"] = frame["household_key"].isin(items.loc[~items["audit"], "household_key"])
    rows = pd.read_parquet(features, filters=[("as_of_date", "==", pd.Timestamp(as_of))])
    groups = [c for c in ATTRIBUTES if c in rows.columns]
    frame = frame.drop(columns=[c for c in groups if c in frame.columns]).merge(
        rows[["household_key", *groups]], on="household_key", how="left")
    frame["as_of_date"] = pd.Timestamp(as_of)
    return frame


def truth_figures(frame: pd.DataFrame, city: Path, secret: bytes, horizon: int
                  ) -> dict[str, Any]:
    """True need precision / recall of the list and group recall ratios; the truth of what the
    visits measure (hardship in the visit month) as diagnostics. Truth via evaluation.py."""
    from safetynet.training.evaluation import (
        TRUTH_HARDSHIP_COLUMN,
        TRUTH_NEED_COLUMN,
        attach_truth_need,
        attach_truth_outcomes,
    )
    from safetynet.training.need import need_audit_groups, need_recall_by_group, recall_ratio_min

    f = attach_truth_need(frame, city, secret, horizon)
    need = pd.to_numeric(f[TRUTH_NEED_COLUMN], errors="coerce")
    if need.isna().all():
        raise SystemExit("bench_loop: the truth's need label is undefined at "
                         f"{frame['as_of_date'].iloc[0]:%Y-%m-%d} (window too short)")
    known = need.notna()
    listed = f["listed"].to_numpy(dtype=bool)
    needy_listed = float(need[listed & known].sum())
    detail = need_recall_by_group(
        listed.astype(float), need.to_numpy(), need_audit_groups(f, ATTRIBUTES),
        fraction=float((listed & known).sum()) / float(known.sum()))
    ratios = {a: _num(r) for a, r in recall_ratio_min(detail).items()}
    # a visit during the as-of month sees that month's state: align one month later
    keys = f[["household_key", "as_of_date"]].assign(
        as_of_date=pd.Timestamp(f["as_of_date"].iloc[0]) + pd.DateOffset(months=1))
    seen = attach_truth_outcomes(keys, city, secret, horizon)[TRUTH_HARDSHIP_COLUMN]
    seen = seen.fillna(False).astype(bool).to_numpy()
    pool = ~listed & f["suppressed"].isna().to_numpy()  # unlisted, not suppressed (incl. audit)
    return {
        "true_need_precision": _num(need[listed & known].mean()),
        "true_need_recall": _num(needy_listed / float(need[known].sum())),
        "true_need_recall_ratio_min": ratios,
        "cohort": len(f),
        "cohort_needy": int(need[known].sum()),
        # needy households the list could not take: visited within the cooldown, or on
        # assistance as the store knows it (the truth still counts them as unmet need)
        "cohort_needy_suppressed": int(need[known & f["suppressed"].notna()].sum()),
        "listed_needy": int(needy_listed),
        "visit_truth": {
            "precision": _num(seen[listed].mean()),
            "recall": _num(seen[listed].sum() / max(1, seen[listed | pool].sum())),
        },
    }


def estimate_figures(rep: dict[str, Any], as_of: date) -> dict[str, Any]:
    """The report's per-run estimates of this run (months pooled back from it)."""
    run = rep["need"]["per_run"].get(as_of.isoformat(), {})
    out: dict[str, Any] = {"estimate_source": "per_run"}
    for key, quantity in (("precision", "need_precision"), ("recall", "need_recall")):
        e = run.get(quantity)
        ok = e is not None and e["status"] == "ok"
        out[f"est_{key}"] = e["value"] if ok else None
        out[f"est_{key}_ci"] = [e["low"], e["high"]] if ok else None
        out[f"est_{key}_status"] = e["status"] if e else "missing"
        out[f"est_{key}_months"] = len(e["months"]) if e else 0
        out[f"est_{key}_visits"] = (e["listed_visits"], e["audit_visits"]) if e else (0, 0)
    return out


def covered(ci: list[float] | None, truth: float | None) -> bool:
    return ci is not None and truth is not None and ci[0] <= truth <= ci[1]


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else round(x, 4)


# --- output ---------------------------------------------------------------------------------


def summarize(cycles: list[dict[str, Any]], households: int) -> dict[str, Any]:
    prec = [c["true_need_precision"] for c in cycles]
    drops = [a - b for a, b in itertools.pairwise(prec)]
    n = len(cycles)
    cov_p = sum(c["covered"]["precision"] for c in cycles)
    cov_r = sum(c["covered"]["recall"] for c in cycles)
    cov_both = sum(c["covered"]["precision"] and c["covered"]["recall"] for c in cycles)
    need_cov = math.ceil(COVERAGE_TARGET * n - 1e-9)
    gain = prec[-1] - prec[0]
    largest = max(drops) if drops else 0.0
    return {
        "first_true_need_precision": prec[0],
        "last_true_need_precision": prec[-1],
        "precision_gain": round(gain, 4),
        "largest_drop": round(max(0.0, largest), 4),
        "covered_precision": f"{cov_p}/{n}",
        "covered_recall": f"{cov_r}/{n}",
        "covered_both": f"{cov_both}/{n}",
        "targets": {
            "setting as in the issue (>= 6 cycles, >= 20,000 households)":
                n >= 6 and households >= 20000,
            "precision_gain >= 0.03": gain >= 0.03,
            "no drop > 0.02": largest <= 0.02,
            f"precision intervals cover >= {need_cov}/{n}": cov_p >= need_cov,
            f"recall intervals cover >= {need_cov}/{n}": cov_r >= need_cov,
        },
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _ci(c: dict[str, Any], key: str) -> str:
    ci = c[f"est_{key}_ci"]
    if ci is None:
        return f"({c[f'est_{key}_status']})"
    return f"{c[f'est_{key}']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]{'' if c['covered'][key] else ' x'}"


def table(result: dict[str, Any]) -> str:
    head = ("| month | as-of | model | gate after | listed | audited | true P | est P [95%] "
            "| true R | est R [95%] | visit-truth P / R | elderly-alone | children | district |")
    lines = [head, "|" + "---|" * 14]
    rows = [*({**a, "kind": "audit"} for a in result["audit_months"]),
            *({**c, "kind": "cycle"} for c in result["cycles"])]
    for i, r in enumerate(rows):
        name = f"audit {i + 1}" if r["kind"] == "audit" else \
            f"cycle {i + 1 - len(result['audit_months'])}"
        ratio = r["true_need_recall_ratio_min"]
        vt = r["visit_truth"]
        est_p = _ci(r, "precision") if r["kind"] == "cycle" else ""
        est_r = _ci(r, "recall") if r["kind"] == "cycle" else ""
        lines.append(
            f"| {name} | {r['as_of']} | v{r['model_version']} | {r.get('gate', '')} "
            f"| {r['listed']} | {r['audited']} | {_pct(r['true_need_precision'])} | {est_p} "
            f"| {_pct(r['true_need_recall'])} | {est_r} "
            f"| {_pct(vt['precision'])} / {_pct(vt['recall'])} "
            f"| {_pct(ratio.get('elderly_living_alone'))} | {_pct(ratio.get('has_children'))} "
            f"| {_pct(ratio.get('district'))} |")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cycles = result["cycles"]
    x = np.arange(1, len(cycles) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, key in zip(axes, ("precision", "recall"), strict=True):
        truth = [c[f"true_need_{key}"] for c in cycles]
        ax.plot(x, truth, "o-", color="black", label=f"true need {key}")
        vt = [c["visit_truth"][key] for c in cycles]
        ax.plot(x, vt, "s:", color="grey", label="truth at the visit month (what visits see)")
        est = [(i, c) for i, c in zip(x, cycles, strict=True) if c[f"est_{key}_ci"]]
        if est:
            xs = np.array([i for i, _ in est], dtype=float) + 0.08
            v = np.array([c[f"est_{key}"] for _, c in est])
            lo = np.array([c[f"est_{key}_ci"][0] for _, c in est])
            hi = np.array([c[f"est_{key}_ci"][1] for _, c in est])
            ax.errorbar(xs, v, yerr=[v - lo, hi - v], fmt="D", color="tab:blue", capsize=4,
                        label="estimate (report, 95%)")
        for i, c in zip(x, cycles, strict=True):
            if not c[f"est_{key}_ci"]:
                ax.annotate("n/a", (i + 0.08, truth[i - 1] or 0), color="tab:red", fontsize=8)
        ax.set_title(f"need {key} of the worklists")
        ax.set_xlabel("cycle")
        ax.set_xticks(x, [c["as_of"][:7] for c in cycles], rotation=30)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    s = result["settings"]
    fig.suptitle(f"bench_loop: {s['households']:,} households, seed {s['seed']}, "
                 f"{s['audit_months']} audit months before the first cycle", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--households", type=int, default=20000)
    p.add_argument("--cycles", type=int, default=6)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", type=Path, required=True, help="Result JSON (plot and table "
                   "are written next to it: same name, .png and .md).")
    p.add_argument("--audit-months", type=int, default=12, help="Months the office ran "
                   "monitor + visits + feedback (no retraining) before the first cycle.")
    p.add_argument("--home", type=Path, default=None, help="SAFETYNET_HOME to use (must not "
                   "exist or be empty; default: a new directory under /tmp, removed at the end)")
    p.add_argument("--trials", type=int, default=6, help="Optuna trials per `safetynet train`.")
    p.add_argument("--keep-home", action="store_true", help="Keep the default temporary home.")
    p.add_argument("--in-process", action="store_true", help="Run the same CLI commands in "
                   "this process (typer's CliRunner) instead of one subprocess each: saves the "
                   "import time of every command (used by tests/test_bench_loop.py).")
    a = p.parse_args(argv)
    if a.households < 500:
        p.error("--households must be at least 500")
    if a.cycles < 1 or a.audit_months < 0 or a.trials < 1:
        p.error("--cycles and --trials must be >= 1, --audit-months >= 0")
    if a.home is not None and a.home.exists() and any(a.home.iterdir()):
        p.error(f"--home {a.home} is not empty: use a new directory (the loop's state is "
                "cumulative)")
    return a


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    temporary = args.home is None
    home = (Path(tempfile.mkdtemp(prefix="bench_loop_", dir="/tmp")) if temporary
            else args.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    for k in [k for k in os.environ if k.startswith("SAFETYNET_")]:
        del os.environ[k]
    os.environ["SAFETYNET_HOME"] = str(home)  # this process reads the same home's database

    from safetynet.config import get_settings, load_policy
    from safetynet.db.engine import make_engine

    horizon = load_policy().label.horizon_months
    tl = Timeline.plan(args.audit_months, args.cycles, horizon)
    (home / "logs").mkdir(exist_ok=True)
    cli = Cli(home, home / "logs" / "bench_loop.log", in_process=args.in_process)
    t0 = time.perf_counter()
    print(f"bench_loop: {args.households:,} households, seed {args.seed}, city "
          f"{CITY_START:%Y-%m} + {tl.months} months; {args.audit_months} audit months from "
          f"{tl.audit_months[0] if tl.audit_months else '-'}, {args.cycles} cycles from "
          f"{tl.cycles[0]}; home {home}", flush=True)
    features = setup(cli, tl, args.households, args.seed, args.trials)
    city = home / "city"
    settings = get_settings()
    engine = make_engine(settings.db_url)
    secret = settings.secret()

    def month(as_of: date) -> dict[str, Any]:
        office_month(cli, as_of, features, city, args.seed)
        frame = run_frame(engine, features, as_of)
        return {
            "as_of": as_of.isoformat(),
            "listed": int(frame["listed"].sum()),
            "audited": int(frame["audit"].sum()),
            "model_version": str(frame["model_version"].iloc[0]),
            **truth_figures(frame, city, secret, horizon),
        }

    audit_rows = []
    for as_of in tl.audit_months:
        print(f"audit month {as_of:%Y-%m}", flush=True)
        audit_rows.append(month(as_of))
    cycles = []
    for k, as_of in enumerate(tl.cycles, 1):
        print(f"cycle {k} {as_of:%Y-%m}", flush=True)
        row = month(as_of)
        row.update(estimate_figures(report(cli), as_of))
        row["covered"] = {
            "precision": covered(row["est_precision_ci"], row["true_need_precision"]),
            "recall": covered(row["est_recall_ci"], row["true_need_recall"]),
        }
        row["trained_version"] = train(cli, features, city, as_of, args.trials)
        row["gate"] = "promoted" if cli.run("promote", check=False).returncode == 0 \
            else "refused"
        cycles.append(row)

    result = {
        "benchmark": "bench_loop",
        "settings": {
            "households": args.households, "cycles": args.cycles, "seed": args.seed,
            "audit_months": args.audit_months, "trials": args.trials,
            "city": f"{CITY_START:%Y-%m} + {tl.months} months",
            "features_as_of": [tl.features[0].isoformat(), tl.features[-1].isoformat()],
            "first_model_trained_on_rows_until": tl.first_train_until.isoformat(),
            "visit_day": VISIT_DAY, "horizon_months": horizon,
            "cli": "in-process (CliRunner)" if args.in_process else "subprocess per command",
        },
        "seed": args.seed,
        "notes": [
            f"a simulated office ran monitor + visits + feedback for {args.audit_months} "
            "months with the first model (no retraining) before the first cycle "
            "(rows under audit_months)",
            "true_need_*: the truth's unmet need at the as-of date (in hardship at the as-of "
            f"month or within {horizon} months, not assisted); listed = non-audit worklist "
            "items; recall over every needy household of the scored cohort",
            "est_*: the report's per-run estimate of that run (months pooled back from it, "
            "est_*_months); null with est_*_status when the report says not enough visits; "
            "not covered when null",
            "visit_truth: what the visits measure (hardship in the visit month; recall over "
            "listed + unlisted unsuppressed), the estimand of est_* for this month",
            "the city is ingested once: entry labels of the last "
            f"{horizon} months before a training date use entries after it",
        ],
        "audit_months": audit_rows,
        "cycles": cycles,
        "summary": summarize(cycles, args.households),
        "steps_seconds": _step_totals(cli.steps),
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    out = args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    text = table(result)
    out.with_suffix(".md").write_text(text + "\n\n" + json.dumps(result["summary"], indent=2)
                                      + "\n")
    plot(result, out.with_suffix(".png"))
    print("\n" + text + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"total {result['total_seconds'] / 60:.1f} min; wrote {out}, "
          f"{out.with_suffix('.md')}, {out.with_suffix('.png')}")
    engine.dispose()
    if temporary and not args.keep_home:
        shutil.rmtree(home, ignore_errors=True)
    return result


def _step_totals(steps: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for s in steps:
        totals[s["command"]] = round(totals.get(s["command"], 0.0) + s["seconds"], 1)
    return totals


if __name__ == "__main__":
    main()
