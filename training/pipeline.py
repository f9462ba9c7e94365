"""The experiment, without MLflow: folds, baselines, search, calibration, metrics, fairness,
then the refit that is registered.

Table-agnostic: a `TableSpec` names the label, entity, optional time, audit and per-group
columns; everything numeric that is not one of those (or an excluded proxy) is a feature. The
household glue (`labels.py`) only builds such a table.

Evaluation measures a *recipe* (search winner's parameters, early stopping on a validation slice
H periods after the fit rows, the explanation-budget cut, calibration on that slice) on the final
fold's out-of-time test. The registered model is that same recipe re-applied at the latest date
(`refit_slices`): fit on every labelled row up to H periods before the latest `valid_periods`
labelled periods, early-stopped and calibrated on those latest periods. So the newest labels
reach the served model, and its calibration is as honest as the one the test measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from safetynet.model import Calibrator
from safetynet.policy import FairnessPolicy, Policy
from safetynet.training import metrics as M
from safetynet.training.baselines import BestSingleFeature, IndicatorCount, LogisticBaseline
from safetynet.training.fairness import audit, flagged_at_capacity
from safetynet.training.model import SearchConfig, fit_to_budget, search, train_booster
from safetynet.training.splits import (
    Fold,
    grouped_folds,
    period_label,
    temporal_folds,
    to_periods,
)

log = logging.getLogger(__name__)

TRUTH_COLUMN = "_truth_prob"  # set only by training/evaluation.py on simulated data
TRUTH_ONSET_COLUMN = "_truth_onset"  # the realised true onset (same origin)
TRUTH_HARDSHIP_COLUMN = "_truth_in_hardship"
TRUTH_COLUMNS = (TRUTH_COLUMN, TRUTH_ONSET_COLUMN, TRUTH_HARDSHIP_COLUMN)


@dataclass
class TableSpec:
    label: str
    entity: str
    time: str | None = None
    audit: Sequence[str] = ()  # audited attributes: never model features
    group: str | None = None  # fixed visit count per group (e.g. district)
    features: Sequence[str] | None = None  # default: all numeric columns not named above
    exclude: Sequence[str] = ()  # features not allowed (proxies); refused if listed in features
    indicators: Sequence[str] = ()  # indicator columns for the indicator-count baseline
    pmt_features: Sequence[str] | None = None  # logistic baseline subset (default: all)

    def feature_columns(self, frame: pd.DataFrame) -> list[str]:
        reserved = {self.label, self.entity, self.time, self.group, *TRUTH_COLUMNS, *self.audit}
        banned = set(self.exclude)
        if self.features is not None:
            bad = [c for c in self.features if c in banned or c in reserved]
            if bad:
                raise ValueError(f"not allowed as model features (audit/proxy/key): {bad}")
            missing = [c for c in self.features if c not in frame.columns]
            if missing:
                raise ValueError(f"feature columns missing from the table: {missing}")
            return list(self.features)
        return [
            c
            for c in frame.columns
            if c not in reserved
            and c not in banned
            and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        ]


@dataclass
class RunConfig:
    """One training run's settings; `config_from_policy` fills them from the policy file."""

    horizon: int
    n_folds: int
    test_periods: int
    valid_periods: int
    fractions: tuple[float, ...]
    capacity_fraction: float
    k_per_group: int | None
    calibration: str
    search: SearchConfig
    compare_unconstrained: bool
    refit: bool  # register the recipe refitted on the latest labels (else the fold model)
    fairness: FairnessPolicy
    fold_search: bool = False  # earlier folds reuse the final fold's best parameters
    shap_rows: int = 2000


@dataclass
class Result:
    metrics: dict[str, float]
    params: dict[str, Any]
    booster: Any
    calibrator: Calibrator
    features: list[str]
    fairness: pd.DataFrame
    folds: list[dict[str, Any]]
    test_frame: pd.DataFrame  # entity/time/label/audit/score columns of the final test rows
    shap_sample: tuple[np.ndarray, np.ndarray]  # (X rows, contributions)
    trials: list[dict[str, Any]]
    baselines: dict[str, str]
    split: str
    label_positive_rate: float
    timings: dict[str, float] = field(default_factory=dict)
    input_example: np.ndarray | None = None
    test_index: np.ndarray | None = None
    refit: dict[str, Any] = field(default_factory=dict)  # what the registered model was fit on
    # the evaluated (final fold) model: the champion comparison of a later run scores this one,
    # so challenger and champion are compared at the same data lag (docs/training.md)
    eval_booster: Any = None
    eval_calibrator: Calibrator | None = None


@dataclass(frozen=True)
class RefitSlices:
    """Rows of the registered model: `fit` trains it; `calibration` early-stops and
    calibrates it."""

    fit: np.ndarray
    calibration: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def refit_slices(frame: pd.DataFrame, spec: TableSpec, cfg: RunConfig) -> RefitSlices:
    """The final fold's geometry moved forward until its validation slice ends at the latest
    labelled period, without a test.

    Temporal: calibration = the latest `valid_periods` periods; fit = every period up to
    `horizon + 1` before them, so no fit label window `(t, t + H]` reaches the calibration
    as-of dates (the same gap as fit -> valid in `temporal_folds`). Without the gap, fit rows of
    the same households would share outcome months with the calibration rows and the calibrator
    would learn an optimistic map. Grouped: a seeded 20% of entities calibrate, the rest fit.
    """
    if spec.time:
        periods = to_periods(frame[spec.time])
        last = int(periods.max())
        cal_start = last - cfg.valid_periods + 1
        fit_end = cal_start - cfg.horizon - 1
        fit = np.flatnonzero(periods <= fit_end)
        cal = np.flatnonzero(periods >= cal_start)
        info: dict[str, Any] = {"fit_end": fit_end, "calibration_start": cal_start,
                                "calibration_end": last}
    else:
        ent = frame[spec.entity].astype(str).to_numpy()
        uniq, codes = np.unique(ent, return_inverse=True)
        draw = np.random.default_rng(cfg.search.seed + 1).random(len(uniq))[codes]
        fit, cal = np.flatnonzero(draw >= 0.2), np.flatnonzero(draw < 0.2)
        info = {}
    if len(fit) == 0 or len(cal) == 0:
        raise ValueError("not enough labelled rows to refit the model on the latest labels")
    return RefitSlices(fit, cal, info)


def fit_recipe(
    params: Mapping[str, Any],
    rounds: int,
    X: np.ndarray,
    y: np.ndarray,
    fit: np.ndarray,
    valid: np.ndarray,
    cfg: RunConfig,
    names: list[str],
) -> tuple[Any, Calibrator, float]:
    """The evaluated recipe on given rows: fit with early stopping on `valid`, cut to the
    explanation budget, calibrate on `valid`. Returns (booster, calibrator, explain ms/row)."""
    from safetynet.training.model import SMALL_DATA_ROWS, explain_ms_per_row

    threads = 1 if len(fit) < SMALL_DATA_ROWS else cfg.search.num_threads
    b = train_booster({**params, "num_threads": threads}, X[fit], y[fit], X[valid], y[valid],
                      rounds, cfg.search.early_stopping_rounds, names)
    if cfg.search.explain_budget_ms is not None:
        b, ms = fit_to_budget(b, X[valid], cfg.search.explain_budget_ms)
    else:
        ms = explain_ms_per_row(b, X[valid])
    return b, Calibrator.fit(b.predict(X[valid]), y[valid], cfg.calibration), ms


def _folds(frame: pd.DataFrame, spec: TableSpec, cfg: RunConfig) -> tuple[list[Fold], str]:
    if spec.time:
        periods = to_periods(frame[spec.time])
        return temporal_folds(
            periods, cfg.horizon, cfg.n_folds, cfg.test_periods, cfg.valid_periods
        ), "temporal"
    return grouped_folds(frame[spec.entity].to_numpy(), cfg.n_folds, seed=cfg.search.seed), "group"


def _ap(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if 0 < y.sum() < len(y) else 0.0


def _baselines(spec: TableSpec, names: list[str]) -> list[Any]:
    out: list[Any] = []
    inds = [c for c in spec.indicators if c in names]
    if inds:
        out.append(IndicatorCount(inds))
    out.append(BestSingleFeature())
    out.append(LogisticBaseline(spec.pmt_features))
    return out


def _eval(
    y: np.ndarray, score: np.ndarray, cfg: RunConfig, groups: np.ndarray | None, prob=None
) -> dict[str, float]:
    return M.evaluate(y, score, cfg.fractions, groups, cfg.k_per_group, prob=prob)


def run(frame: pd.DataFrame, spec: TableSpec, cfg: RunConfig) -> Result:
    """Fit and evaluate on every fold; the last fold's model is the candidate."""
    t_start = time.perf_counter()
    _check_table(frame, spec)
    names = spec.feature_columns(frame)
    if not names:
        raise ValueError("the table has no numeric feature columns")
    X = frame[names].to_numpy(dtype=np.float32, na_value=np.nan)
    y = frame[spec.label].to_numpy(dtype=np.float64)
    groups = frame[spec.group].astype(str).to_numpy() if spec.group else None
    truth = frame[TRUTH_COLUMN].to_numpy(dtype=np.float64) if TRUTH_COLUMN in frame else None
    onset = (frame[TRUTH_ONSET_COLUMN].to_numpy(dtype=np.float64, na_value=np.nan)
             if TRUTH_ONSET_COLUMN in frame else None)
    folds, split = _folds(frame, spec, cfg)
    is_date = bool(spec.time) and not pd.api.types.is_integer_dtype(frame[spec.time])
    metrics: dict[str, float] = {}
    fold_info: list[dict[str, Any]] = []
    timings: dict[str, float] = {}

    def score_fn(yv: np.ndarray, pv: np.ndarray) -> float:
        return _ap(yv, pv)

    final = folds[-1]
    # 1. search on the final fold (the candidate), budgeted and optionally unconstrained
    t0 = time.perf_counter()
    res = search(X[final.fit], y[final.fit], X[final.valid], y[final.valid], cfg.search,
                 score_fn, names)
    timings["search_seconds"] = time.perf_counter() - t0
    booster = res.booster
    explain_ms = float("nan")
    if cfg.search.explain_budget_ms is not None:
        booster, explain_ms = fit_to_budget(booster, X[final.test], cfg.search.explain_budget_ms)
    else:
        from safetynet.training.model import explain_ms_per_row

        explain_ms = explain_ms_per_row(booster, X[final.test])
    metrics["eval_explain_ms_per_row"] = explain_ms
    metrics["eval_n_trees"] = float(booster.num_trees())
    metrics["search_valid_average_precision"] = res.valid_score

    unconstrained = None
    if cfg.compare_unconstrained and cfg.search.explain_budget_ms is not None:
        t0 = time.perf_counter()
        ucfg = SearchConfig(**{**cfg.search.__dict__, "explain_budget_ms": None})
        unconstrained = search(X[final.fit], y[final.fit], X[final.valid], y[final.valid], ucfg,
                               score_fn, names)
        timings["unconstrained_search_seconds"] = time.perf_counter() - t0

    # 2. every fold: model (final params), calibration on valid, baselines, metrics
    from safetynet.training.model import explain_ms_per_row

    final_out: dict[str, Any] = {}
    baseline_desc: dict[str, str] = {}
    for i, fold in enumerate(folds):
        is_final = fold is final
        if is_final:
            b = booster
        else:
            b = train_booster(res.params, X[fold.fit], y[fold.fit], X[fold.valid], y[fold.valid],
                              res.rounds or cfg.search.max_rounds,
                              cfg.search.early_stopping_rounds, names)
        cal = Calibrator.fit(b.predict(X[fold.valid]), y[fold.valid], cfg.calibration)
        raw = b.predict(X[fold.test])
        prob = cal.transform(raw)
        yt = y[fold.test]
        gt = groups[fold.test] if groups is not None else None
        m = _eval(yt, prob, cfg, gt)
        m["roc_auc_raw"] = M.evaluate(yt, raw, ())["roc_auc"]
        fm = M.prefixed(m, f"fold{i}_")
        best_base: dict[str, float] = {}
        fitted_baselines = []
        for base in _baselines(spec, names):
            try:
                base.fit(X[fold.fit], y[fold.fit], names)
            except ValueError as exc:
                log.warning("baseline %s skipped: %s", base.name, exc)
                continue
            fitted_baselines.append(base)
            bm = _eval(yt, base.score(X[fold.test]), cfg, gt)
            bm.pop("brier", None)
            fm.update(M.prefixed(bm, f"fold{i}_baseline_{base.name}_"))
            for f in cfg.fractions:
                key = f"precision_at_{M.pct_label(f)}"
                best_base[key] = max(best_base.get(key, -1.0), bm[key])
            if is_final:
                baseline_desc[base.name] = _describe(base)
        for key, val in best_base.items():
            fm[f"fold{i}_baseline_best_{key}"] = val
        fm[f"fold{i}_fit_rows"] = float(len(fold.fit))
        metrics.update(fm)
        info = dict(fold.info)
        if split == "temporal" and is_date:  # months as YYYY-MM for people
            info = {k: period_label(v, True) if k.endswith(("_start", "_end")) else v
                    for k, v in info.items()}
        fold_info.append({"fold": i, **info, "n_fit": len(fold.fit),
                          "n_valid": len(fold.valid), "n_test": len(fold.test)})
        if is_final:
            final_out = {"cal": cal, "prob": prob, "raw": raw, "metrics": m, "best": best_base,
                         "baselines": fitted_baselines}
    metrics.update(M.prefixed(final_out["metrics"], "test_"))
    for key, val in final_out["best"].items():
        metrics[f"test_baseline_best_{key}"] = val
        metrics[f"test_lift_over_baseline_{key.removeprefix('precision_')}"] = (
            final_out["metrics"][key] / val if val > 0 else float("nan")
        )
    for key in [k for k in metrics if k.startswith(f"fold{len(folds) - 1}_baseline_")]:
        metrics["test_" + key.split("_", 1)[1]] = metrics[key]

    # 3. what the explanation budget costs
    cap = f"precision_at_{M.pct_label(cfg.capacity_fraction)}"
    if unconstrained is not None:
        ub = unconstrained.booster
        ucal = Calibrator.fit(ub.predict(X[final.valid]), y[final.valid], cfg.calibration)
        um = _eval(y[final.test], ucal.transform(ub.predict(X[final.test])), cfg, None)
        metrics[f"test_unconstrained_{cap}"] = um[cap]
        metrics["test_unconstrained_average_precision"] = um["average_precision"]
        metrics["unconstrained_explain_ms_per_row"] = explain_ms_per_row(ub, X[final.test])
        metrics["unconstrained_n_trees"] = float(ub.num_trees())
        metrics[f"explain_budget_cost_{cap}"] = um[cap] - final_out["metrics"][cap]

    # 4. oracle (simulated data only): rows with a truth value; model measured on the same rows
    yt = y[final.test]
    if truth is not None:
        have = np.isfinite(truth[final.test])
        metrics["test_truth_coverage"] = float(have.mean())
        if have.sum() > 0 and 0 < yt[have].sum() < have.sum():
            tt, yo, po = truth[final.test][have], yt[have], final_out["prob"][have]
            om = _eval(yo, tt, cfg, None)
            mm = _eval(yo, po, cfg, None)
            for f in cfg.fractions:
                lab = M.pct_label(f)
                o = om[f"precision_at_{lab}"]
                metrics[f"test_oracle_precision_at_{lab}"] = o
                metrics[f"test_efficiency_at_{lab}"] = (
                    mm[f"precision_at_{lab}"] / o if o > 0 else float("nan")
                )
                model_top = flagged_at_capacity(po, f, cfg.search.seed)
                oracle_top = flagged_at_capacity(tt, f, cfg.search.seed)
                tp_model, tp_oracle = float(tt[model_top].mean()), float(tt[oracle_top].mean())
                metrics[f"test_truth_precision_at_{lab}"] = tp_model
                metrics[f"test_oracle_truth_precision_at_{lab}"] = tp_oracle
                metrics[f"test_truth_efficiency_at_{lab}"] = (
                    tp_model / tp_oracle if tp_oracle > 0 else float("nan")
                )
            metrics["test_oracle_roc_auc"] = om["roc_auc"]
        if onset is not None:
            metrics.update(_onset_metrics(onset[final.test], truth[final.test],
                                          final_out["prob"], cfg))

    # 5. fairness at the outreach threshold on the final test
    test_frame = frame.iloc[final.test][
        [c for c in dict.fromkeys([spec.entity, spec.time, spec.label, spec.group, *spec.audit])
         if c]
    ].reset_index(drop=True)
    test_frame["score"] = final_out["prob"]
    test_frame["raw_score"] = final_out["raw"]
    flagged = flagged_at_capacity(final_out["prob"], cfg.capacity_fraction, cfg.search.seed)
    test_frame["flagged"] = flagged
    audit_cols = [c for c in dict.fromkeys([*spec.audit, spec.group]) if c]
    fair = audit(yt, flagged, test_frame[audit_cols], cfg.fairness)
    metrics["fairness_groups_failing"] = float(fair["fails_gate"].sum()) if len(fair) else 0.0
    metrics["fairness_groups_flagged"] = (
        float((fair["flags"] != "").sum()) if len(fair) else 0.0
    )
    # The status quo's fairness: the best baseline audited the same way. With no champion
    # yet, the "no_worse" promotion gate asks the model to be no less fair than this.
    key = f"precision_at_{M.pct_label(cfg.capacity_fraction)}"
    bases = final_out["baselines"]
    if bases:
        best = max(bases, key=lambda b: metrics.get(f"test_baseline_{b.name}_{key}", -1.0))
        b_flag = flagged_at_capacity(best.score(X[final.test]), cfg.capacity_fraction,
                                     cfg.search.seed)
        b_fair = audit(yt, b_flag, test_frame[audit_cols], cfg.fairness)
        metrics["baseline_fairness_groups_failing"] = (
            float(b_fair["fails_gate"].sum()) if len(b_fair) else 0.0
        )

    # 6. the registered model: the evaluated recipe refitted on the latest labels. Nothing
    # above depends on it, so every test_*/fold*/fairness metric is the evaluated model's.
    calibrator, final_booster = final_out["cal"], booster
    refit_info: dict[str, Any] = {"refit": False}
    if cfg.refit:
        t0 = time.perf_counter()
        rs = refit_slices(frame, spec, cfg)
        booster, calibrator, explain_ms = fit_recipe(
            res.params, res.rounds or cfg.search.max_rounds, X, y, rs.fit, rs.calibration, cfg,
            names)
        timings["refit_seconds"] = time.perf_counter() - t0
        refit_info = {"refit": True, "refit_rows": len(rs.fit),
                      "refit_calibration_rows": len(rs.calibration)}
        if split == "temporal":
            fmt = (lambda v: period_label(v, True)) if is_date else str
            refit_info.update(refit_max_as_of=fmt(rs.info["fit_end"]),
                              refit_calibration=f"{fmt(rs.info['calibration_start'])}.."
                                                f"{fmt(rs.info['calibration_end'])}")
            metrics["refit_periods_after_fold_fit"] = float(
                rs.info["fit_end"] - final.info["fit_end"])
        metrics["refit_rows"] = float(len(rs.fit))
        metrics["refit_calibration_rows"] = float(len(rs.calibration))
        metrics["refit_positives"] = float(y[rs.fit].sum())
    metrics["explain_ms_per_row"] = explain_ms
    metrics["n_trees"] = float(booster.num_trees())

    # 7. SHAP sample for the beeswarm (LightGBM's own TreeSHAP) of the registered model
    rng = np.random.default_rng(cfg.search.seed)
    pick = rng.choice(len(final.test), min(cfg.shap_rows, len(final.test)), replace=False)
    Xs = X[final.test][pick]
    contrib = booster.predict(Xs, pred_contrib=True)
    timings["total_seconds"] = time.perf_counter() - t_start
    metrics.update({f"time_{k}": v for k, v in timings.items()})
    return Result(
        metrics=metrics,
        params={**res.params, "n_trees": booster.num_trees(), "split": split,
                "calibration": calibrator.method, "n_features": len(names),
                "rounds_cap": res.rounds, **refit_info,
                "search_trials": cfg.search.n_trials, "search_seed": cfg.search.seed,
                "explain_budget_ms": cfg.search.explain_budget_ms, "horizon": cfg.horizon,
                "capacity_fraction": cfg.capacity_fraction},
        booster=booster,
        calibrator=calibrator,
        features=names,
        fairness=fair,
        folds=fold_info,
        test_frame=test_frame,
        shap_sample=(Xs, contrib),
        trials=res.trials + ([{"unconstrained": True, **t} for t in unconstrained.trials]
                             if unconstrained else []),
        baselines=baseline_desc,
        split=split,
        label_positive_rate=float(y.mean()),
        timings=timings,
        input_example=X[final.test][:5],
        test_index=final.test,
        refit=refit_info,
        eval_booster=final_booster,
        eval_calibrator=final_out["cal"],
    )


def _onset_metrics(onset: np.ndarray, truth: np.ndarray, prob: np.ndarray,
                   cfg: RunConfig) -> dict[str, float]:
    """Share of realised true onsets in the model's and the oracle's top k.

    `test_oracle_truth_precision_*` picks and scores the oracle's top k with one Monte Carlo
    estimate, which flatters it (~17% on the demo city, docs/training.md); realised onsets
    are independent of both rankings, so their ratio is an unbiased efficiency.
    """
    have = np.isfinite(onset) & np.isfinite(truth)
    out: dict[str, float] = {}
    if not have.any():
        return out
    o, t, p = onset[have], truth[have], prob[have]
    for f in cfg.fractions:
        lab = M.pct_label(f)
        model = float(o[flagged_at_capacity(p, f, cfg.search.seed)].mean())
        oracle = float(o[flagged_at_capacity(t, f, cfg.search.seed)].mean())
        out[f"test_onset_precision_at_{lab}"] = model
        out[f"test_oracle_onset_precision_at_{lab}"] = oracle
        out[f"test_onset_efficiency_at_{lab}"] = model / oracle if oracle > 0 else float("nan")
    return out


def _describe(base: Any) -> str:
    if isinstance(base, BestSingleFeature):
        return f"{'+' if base.sign_ > 0 else '-'}{base.feature_} (train AP {base.train_ap_:.3f})"
    if isinstance(base, LogisticBaseline):
        return f"logistic regression on {len(base.used_)} features: {', '.join(base.used_[:12])}"
    if isinstance(base, IndicatorCount):
        return f"count of {len(base.indicator_columns)} indicators"
    return base.name


def _check_table(frame: pd.DataFrame, spec: TableSpec) -> None:
    needed = [c for c in (spec.label, spec.entity, spec.time, spec.group) if c]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the table: {missing}; it has {list(frame.columns)[:30]}")
    lab = frame[spec.label]
    if lab.isna().any():
        raise ValueError(f"label column {spec.label!r} has {int(lab.isna().sum())} missing values "
                         "(drop rows that are not fully labelled first)")
    values = set(pd.unique(lab.astype(float)))
    if not values <= {0.0, 1.0}:
        raise ValueError(f"label column {spec.label!r} must be 0/1 (or boolean), got {values}")
    if len(values) < 2:
        raise ValueError(f"label column {spec.label!r} has a single class")


def config_from_policy(policy: Policy, **overrides: Any) -> RunConfig:
    """RunConfig from policy.toml's [label], [training], [outreach] and [fairness] sections;
    `overrides` replace SearchConfig or RunConfig fields by name."""
    tr = policy.training
    sc = SearchConfig(
        n_trials=tr.n_trials,
        seed=tr.seed,
        max_rounds=tr.max_rounds,
        early_stopping_rounds=tr.early_stopping_rounds,
        num_threads=tr.num_threads,
        explain_budget_ms=tr.explain_budget_ms,
        ns_per_leaf=tr.ns_per_leaf,
        search_max_rows=tr.search_max_rows or None,
        min_learning_rate=tr.min_learning_rate,
        prune=tr.prune,
    )
    for key in list(overrides):
        if key in SearchConfig.__dataclass_fields__:
            sc = SearchConfig(**{**sc.__dict__, key: overrides.pop(key)})
    cfg = RunConfig(
        horizon=policy.label.horizon_months,
        n_folds=tr.n_folds,
        test_periods=tr.test_periods,
        valid_periods=tr.valid_periods,
        fractions=tr.fractions,
        capacity_fraction=policy.outreach.capacity_fraction,
        k_per_group=tr.k_per_group,
        calibration=tr.calibration,
        search=sc,
        compare_unconstrained=tr.compare_unconstrained,
        refit=tr.refit,
        fairness=policy.fairness,
    )
    for key, val in overrides.items():
        setattr(cfg, key, val)
    return cfg
