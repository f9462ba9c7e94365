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
from safetynet.training.model import (
    SMALL_DATA_ROWS,
    SearchConfig,
    SearchResult,
    explain_ms_per_row,
    fit_to_budget,
    search,
    total_leaves,
    train_booster,
)
from safetynet.training.need import (
    DETAIL_COLUMNS,
    need_audit_groups,
    need_metrics,
    need_recall_by_group,
)
from safetynet.training.splits import (
    Fold,
    grouped_folds,
    period_label,
    temporal_folds,
    to_periods,
)

# the truth's column names (simulated data only), reserved: never model features; re-exported
# for `training/evaluation.py`, which attaches them
from safetynet.training.truth_columns import (
    TRUTH_COLUMN,
    TRUTH_COLUMNS,
    TRUTH_ELDERLY_ALONE_COLUMN,  # noqa: F401
    TRUTH_HARDSHIP_COLUMN,  # noqa: F401
    TRUTH_NEED_COLUMN,
    TRUTH_ONSET_COLUMN,
)

log = logging.getLogger(__name__)


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
    # isotonic keeps the raw order inside its steps (False: scikit-learn's flat steps, as
    # before issue 12; benchmarks compare the two)
    order_within_steps: bool = True


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
    # simulated data only: need recall per (as-of month, ranking, attribute, group)
    need_by_group: pd.DataFrame | None = None
    # the need model (entry + visits, docs/need-learning.md): params of the evaluated and the
    # registered fit; {"need_model": "cold_start", ...} when visits were too few or absent
    need_model: dict[str, Any] = field(default_factory=dict)


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
    threads = 1 if len(fit) < SMALL_DATA_ROWS else cfg.search.num_threads
    b = train_booster({**params, "num_threads": threads}, X[fit], y[fit], X[valid], y[valid],
                      rounds, cfg.search.early_stopping_rounds, names)
    if cfg.search.explain_budget_ms is not None:
        b, ms = fit_to_budget(b, X[valid], cfg.search.explain_budget_ms)
    else:
        ms = explain_ms_per_row(b, X[valid])
    return b, _calibrate(b.predict(X[valid]), y[valid], cfg), ms


def _calibrate(raw: np.ndarray, y: np.ndarray, cfg: RunConfig) -> Calibrator:
    return Calibrator.fit(raw, y, cfg.calibration, order_within_steps=cfg.order_within_steps)


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


def _baselines(spec: TableSpec, indicators: Sequence[str]) -> list[Any]:
    """The baselines of a run; the rules baseline only where the table has indicator columns."""
    out: list[Any] = []
    if indicators:
        out.append(IndicatorCount(indicators))
    out.append(BestSingleFeature())
    out.append(LogisticBaseline(spec.pmt_features))
    return out


def _eval(
    y: np.ndarray, score: np.ndarray, cfg: RunConfig, groups: np.ndarray | None, prob=None
) -> dict[str, float]:
    return M.evaluate(y, score, cfg.fractions, groups, cfg.k_per_group, prob=prob)


# --- the steps of `run`, in order; each returns its metrics and what later steps need ------
@dataclass
class Prepared:
    """The table as arrays and its folds (the final fold is the evaluated candidate).

    `X` (n, features) float32 holds the model features `names`; `X_indicators` (n, k) the
    indicator columns the rules baseline counts, which need not be model features (the
    household table's `ind_*` flags are not)."""

    frame: pd.DataFrame
    spec: TableSpec
    names: list[str]
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    folds: list[Fold]
    split: str
    is_date: bool
    indicators: list[str]
    X_indicators: np.ndarray

    @property
    def final(self) -> Fold:
        return self.folds[-1]

    def baseline_inputs(self, base: Any) -> tuple[np.ndarray, list[str]]:
        """(matrix, column names) a baseline is fitted and scored on."""
        if isinstance(base, IndicatorCount):
            return self.X_indicators, self.indicators
        return self.X, self.names


def prepare(frame: pd.DataFrame, spec: TableSpec, cfg: RunConfig) -> Prepared:
    """Check the table, pick the features, build the arrays and the folds. Raises ValueError
    for a table that cannot be trained on (see `_check_table`)."""
    _check_table(frame, spec)
    names = spec.feature_columns(frame)
    if not names:
        raise ValueError("the table has no numeric feature columns")
    indicators = [c for c in spec.indicators if c in frame.columns
                  and (pd.api.types.is_numeric_dtype(frame[c])
                       or pd.api.types.is_bool_dtype(frame[c]))]
    folds, split = _folds(frame, spec, cfg)
    return Prepared(
        frame=frame,
        spec=spec,
        names=names,
        X=frame[names].to_numpy(dtype=np.float32, na_value=np.nan),
        y=frame[spec.label].to_numpy(dtype=np.float64),
        groups=frame[spec.group].astype(str).to_numpy() if spec.group else None,
        folds=folds,
        split=split,
        is_date=bool(spec.time) and not pd.api.types.is_integer_dtype(frame[spec.time]),
        indicators=indicators,
        X_indicators=frame[indicators].to_numpy(dtype=np.float32, na_value=np.nan),
    )


@dataclass
class Searched:
    """The search winner (`booster` already cut to the explanation budget) and, when asked
    for, the unconstrained search that prices the budget."""

    best: SearchResult
    booster: Any
    unconstrained: SearchResult | None
    metrics: dict[str, float]
    timings: dict[str, float]


def search_step(data: Prepared, cfg: RunConfig) -> Searched:
    """Search on the final fold (fit / valid), budgeted and optionally unconstrained.
    Metrics: eval_explain_ms_per_row, eval_n_trees, search_valid_average_precision."""
    final, X, y = data.final, data.X, data.y
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    res = search(X[final.fit], y[final.fit], X[final.valid], y[final.valid], cfg.search,
                 _ap, data.names)
    timings["search_seconds"] = time.perf_counter() - t0
    booster = res.booster
    if cfg.search.explain_budget_ms is not None:
        booster, explain_ms = fit_to_budget(booster, X[final.test], cfg.search.explain_budget_ms)
    else:
        explain_ms = explain_ms_per_row(booster, X[final.test])
    metrics = {"eval_explain_ms_per_row": explain_ms,
               "eval_n_trees": float(booster.num_trees()),
               "search_valid_average_precision": res.valid_score}
    unconstrained = None
    if cfg.compare_unconstrained and cfg.search.explain_budget_ms is not None:
        t0 = time.perf_counter()
        ucfg = SearchConfig(**{**cfg.search.__dict__, "explain_budget_ms": None})
        unconstrained = search(X[final.fit], y[final.fit], X[final.valid], y[final.valid], ucfg,
                               _ap, data.names)
        timings["unconstrained_search_seconds"] = time.perf_counter() - t0
    return Searched(res, booster, unconstrained, metrics, timings)


@dataclass
class FinalFold:
    """The evaluated model on the final test: its calibrator, calibrated and raw scores,
    unprefixed metrics, best baseline value per precision cut and the fitted baselines."""

    calibrator: Calibrator
    prob: np.ndarray
    raw: np.ndarray
    metrics: dict[str, float]
    best: dict[str, float]
    baselines: list[Any]


@dataclass
class FoldEvaluation:
    metrics: dict[str, float]
    folds: list[dict[str, Any]]  # one description per fold (periods as YYYY-MM for dates)
    final: FinalFold
    baselines: dict[str, str]  # name -> description, as fitted on the final fold


def _evaluate_fold(
    data: Prepared, cfg: RunConfig, i: int, fold: Fold, booster: Any
) -> tuple[dict[str, float], FinalFold]:
    """Calibrate `booster` on the fold's valid rows, score its test rows beside the baselines
    fitted on its fit rows. Returns (fold{i}_* metrics, the fold's final-test view)."""
    X, y = data.X, data.y
    cal = _calibrate(booster.predict(X[fold.valid]), y[fold.valid], cfg)
    raw = booster.predict(X[fold.test])
    prob = cal.transform(raw)
    yt = y[fold.test]
    gt = data.groups[fold.test] if data.groups is not None else None
    m = _eval(yt, prob, cfg, gt)
    m["roc_auc_raw"] = M.evaluate(yt, raw, ())["roc_auc"]
    # calibration in the large: a gap between these two and base_rate is base-rate drift
    # between the calibration slice and the test (docs/training.md, Calibration)
    m["mean_predicted"] = float(prob.mean())
    m["calibration_base_rate"] = float(y[fold.valid].mean())
    fm = M.prefixed(m, f"fold{i}_")
    best_base: dict[str, float] = {}
    fitted = []
    for base in _baselines(data.spec, data.indicators):
        Xb, nb = data.baseline_inputs(base)
        try:
            base.fit(Xb[fold.fit], y[fold.fit], nb)
        except ValueError as exc:
            log.warning("baseline %s skipped: %s", base.name, exc)
            continue
        fitted.append(base)
        bm = _eval(yt, base.score(Xb[fold.test]), cfg, gt)
        bm.pop("brier", None)
        fm.update(M.prefixed(bm, f"fold{i}_baseline_{base.name}_"))
        for f in cfg.fractions:
            key = f"precision_at_{M.pct_label(f)}"
            best_base[key] = max(best_base.get(key, -1.0), bm[key])
    for key, val in best_base.items():
        fm[f"fold{i}_baseline_best_{key}"] = val
    fm[f"fold{i}_fit_rows"] = float(len(fold.fit))
    return fm, FinalFold(cal, prob, raw, m, best_base, fitted)


def evaluate_folds(data: Prepared, cfg: RunConfig, searched: Searched) -> FoldEvaluation:
    """Every fold: the model (earlier folds refit with the winner's parameters), calibration
    on valid, baselines, metrics (`fold{i}_*`); the final fold's become `test_*`, with
    `test_baseline_best_*` and `test_lift_over_baseline_*`."""
    metrics: dict[str, float] = {}
    fold_info: list[dict[str, Any]] = []
    res = searched.best
    final_view: FinalFold | None = None
    for i, fold in enumerate(data.folds):
        is_final = fold is data.final
        if is_final:
            b = searched.booster
        else:
            b = train_booster(res.params, data.X[fold.fit], data.y[fold.fit],
                              data.X[fold.valid], data.y[fold.valid],
                              res.rounds or cfg.search.max_rounds,
                              cfg.search.early_stopping_rounds, data.names)
        fm, view = _evaluate_fold(data, cfg, i, fold, b)
        metrics.update(fm)
        info = dict(fold.info)
        if data.split == "temporal" and data.is_date:  # months as YYYY-MM for people
            info = {k: period_label(v, True) if k.endswith(("_start", "_end")) else v
                    for k, v in info.items()}
        fold_info.append({"fold": i, **info, "n_fit": len(fold.fit),
                          "n_valid": len(fold.valid), "n_test": len(fold.test)})
        if is_final:
            final_view = view
    assert final_view is not None
    metrics.update(M.prefixed(final_view.metrics, "test_"))
    for key, val in final_view.best.items():
        metrics[f"test_baseline_best_{key}"] = val
        metrics[f"test_lift_over_baseline_{key.removeprefix('precision_')}"] = (
            final_view.metrics[key] / val if val > 0 else float("nan")
        )
    last = len(data.folds) - 1
    for key in [k for k in metrics if k.startswith(f"fold{last}_baseline_")]:
        metrics["test_" + key.split("_", 1)[1]] = metrics[key]
    descriptions = {b.name: _describe(b) for b in final_view.baselines}
    return FoldEvaluation(metrics, fold_info, final_view, descriptions)


def explanation_budget_cost(
    data: Prepared, cfg: RunConfig, searched: Searched, final: FinalFold
) -> dict[str, float]:
    """What the explanation budget costs at capacity: the unconstrained search's model,
    calibrated the same way, on the same test (empty without an unconstrained search)."""
    if searched.unconstrained is None:
        return {}
    fold, X, y = data.final, data.X, data.y
    cap = f"precision_at_{M.pct_label(cfg.capacity_fraction)}"
    ub = searched.unconstrained.booster
    ucal = _calibrate(ub.predict(X[fold.valid]), y[fold.valid], cfg)
    um = _eval(y[fold.test], ucal.transform(ub.predict(X[fold.test])), cfg, None)
    return {
        f"test_unconstrained_{cap}": um[cap],
        "test_unconstrained_average_precision": um["average_precision"],
        "unconstrained_explain_ms_per_row": explain_ms_per_row(ub, X[fold.test]),
        "unconstrained_n_trees": float(ub.num_trees()),
        f"explain_budget_cost_{cap}": um[cap] - final.metrics[cap],
    }


def best_baseline(evaluation: FoldEvaluation, cfg: RunConfig) -> Any | None:
    """The fitted baseline with the best observed precision at capacity on the final test
    (the status quo the model is compared with), or None when no baseline could be fitted."""
    key = f"precision_at_{M.pct_label(cfg.capacity_fraction)}"
    bases = evaluation.final.baselines
    if not bases:
        return None
    return max(bases, key=lambda b: evaluation.metrics.get(f"test_baseline_{b.name}_{key}", -1.0))


def oracle_metrics(data: Prepared, cfg: RunConfig, final: FinalFold) -> dict[str, float]:
    """Simulated data only (`TRUTH_COLUMN` present): the oracle ranks by the true onset
    probability; model and oracle are measured on the same test rows with a truth value.
    Diagnostics of the onset label (docs/training.md); empty without truth."""
    if TRUTH_COLUMN not in data.frame:
        return {}
    test = data.final.test
    truth = data.frame[TRUTH_COLUMN].to_numpy(dtype=np.float64)[test]
    yt = data.y[test]
    metrics: dict[str, float] = {}
    have = np.isfinite(truth)
    metrics["test_truth_coverage"] = float(have.mean())
    if have.sum() > 0 and 0 < yt[have].sum() < have.sum():
        tt, yo, po = truth[have], yt[have], final.prob[have]
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
    if TRUTH_ONSET_COLUMN in data.frame:
        onset = data.frame[TRUTH_ONSET_COLUMN].to_numpy(dtype=np.float64, na_value=np.nan)
        metrics.update(_onset_metrics(onset[test], truth, final.prob, cfg))
    return metrics


@dataclass
class NeedEvaluation:
    metrics: dict[str, float]
    by_group: pd.DataFrame  # NEED_GROUP_COLUMNS: per as-of month, ranking, attribute, group


NEED_GROUP_COLUMNS = ["as_of", "ranking", *DETAIL_COLUMNS]


def need_evaluation(
    data: Prepared, cfg: RunConfig, final: FinalFold, baseline: Any | None,
    score: np.ndarray | None = None,
) -> NeedEvaluation | None:
    """Simulated data only (`TRUTH_NEED_COLUMN` present): who of the households in unmet need
    do the model's list, the best baseline's and the onset oracle's reach
    (`training/need.py`)?

    One ranking per as-of month of the final test (a list is drawn per month), then each
    figure is averaged over the months (`test_need_months` of them). Keys:
    `test_need_*` (model), `test_baseline_best_need_*`, `test_oracle_need_*` (ranked by the
    true onset probability, where attached). Audited attributes: policy
    `[fairness] need_audit_attributes`; the ratio needs `min_group_positives` households in
    need per group. None without the truth's need column."""
    if TRUTH_NEED_COLUMN not in data.frame:
        return None
    test = data.frame.iloc[data.final.test].reset_index(drop=True)
    attributes = list(cfg.fairness.need_audit_attributes)
    groups = need_audit_groups(test, attributes)
    need = test[TRUTH_NEED_COLUMN]
    rankings = {"model": ("test_", final.prob if score is None else score)}
    if baseline is not None:
        Xb, _ = data.baseline_inputs(baseline)
        rankings["baseline_best"] = ("test_baseline_best_",
                                     baseline.score(Xb[data.final.test]))
    if TRUTH_COLUMN in test:
        truth = test[TRUTH_COLUMN].to_numpy(dtype=np.float64)
        rankings["oracle"] = ("test_oracle_", np.nan_to_num(truth, nan=-1.0))
    months = (test[data.spec.time].astype(str) if data.spec.time
              else pd.Series("all", index=test.index))
    per_month: dict[str, list[dict[str, float]]] = {name: [] for name in rankings}
    tables = []
    for month, idx in months.groupby(months, sort=True).groups.items():
        rows = np.asarray(idx)
        if need.iloc[rows].notna().sum() == 0:
            continue
        for name, (prefix, score) in rankings.items():
            per_month[name].append(need_metrics(
                score[rows], need.iloc[rows], groups.iloc[rows], cfg.fractions, attributes,
                cfg.capacity_fraction, cfg.fairness.min_group_positives, prefix))
            if name != "oracle":
                table = need_recall_by_group(score[rows], need.iloc[rows], groups.iloc[rows],
                                             cfg.capacity_fraction,
                                             cfg.fairness.min_group_positives)
                tables.append(table.assign(as_of=month, ranking=name))
    metrics: dict[str, float] = {}
    for values in per_month.values():
        for key in dict.fromkeys(k for m in values for k in m):
            vals = np.array([m.get(key, np.nan) for m in values], dtype=np.float64)
            metrics[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    metrics["test_need_months"] = float(len(per_month["model"]))
    by_group = (pd.concat(tables, ignore_index=True)[NEED_GROUP_COLUMNS] if tables
                else pd.DataFrame(columns=NEED_GROUP_COLUMNS))
    return NeedEvaluation(metrics, by_group)


@dataclass
class Fairness:
    metrics: dict[str, float]
    table: pd.DataFrame  # training/fairness.py `audit` of the model
    test_frame: pd.DataFrame  # entity/time/label/audit/score/flagged of the final test rows


def fairness_step(
    data: Prepared, cfg: RunConfig, final: FinalFold, baseline: Any | None
) -> Fairness:
    """Fairness at the outreach threshold on the final test, of the model and of the best
    baseline (the status quo: with no champion yet, the "no_worse" promotion gate asks the
    model to be no less fair than it). Metrics: fairness_groups_failing,
    fairness_groups_flagged, baseline_fairness_groups_failing."""
    spec, test = data.spec, data.final.test
    yt = data.y[test]
    cols = [c for c in dict.fromkeys([spec.entity, spec.time, spec.label, spec.group,
                                      *spec.audit]) if c]
    test_frame = data.frame.iloc[test][cols].reset_index(drop=True)
    test_frame["score"] = final.prob
    test_frame["raw_score"] = final.raw
    flagged = flagged_at_capacity(final.prob, cfg.capacity_fraction, cfg.search.seed)
    test_frame["flagged"] = flagged
    audit_cols = [c for c in dict.fromkeys([*spec.audit, spec.group]) if c]
    fair = audit(yt, flagged, test_frame[audit_cols], cfg.fairness)
    metrics = {
        "fairness_groups_failing": float(fair["fails_gate"].sum()) if len(fair) else 0.0,
        "fairness_groups_flagged": float((fair["flags"] != "").sum()) if len(fair) else 0.0,
    }
    if baseline is not None:
        Xb, _ = data.baseline_inputs(baseline)
        b_flag = flagged_at_capacity(baseline.score(Xb[test]), cfg.capacity_fraction,
                                     cfg.search.seed)
        b_fair = audit(yt, b_flag, test_frame[audit_cols], cfg.fairness)
        metrics["baseline_fairness_groups_failing"] = (
            float(b_fair["fails_gate"].sum()) if len(b_fair) else 0.0
        )
    return Fairness(metrics, fair, test_frame)


@dataclass
class Registered:
    """The model to register: booster, calibrator, explanation cost and what it was fit on."""

    booster: Any
    calibrator: Calibrator
    explain_ms: float
    info: dict[str, Any]
    metrics: dict[str, float]
    timings: dict[str, float]


def refit_step(
    data: Prepared, cfg: RunConfig, searched: Searched, final: FinalFold
) -> Registered:
    """The registered model: the evaluated recipe refitted on the latest labels
    (`refit_slices`, `fit_recipe`), or the evaluated model itself when `cfg.refit` is off.
    Nothing else depends on it, so every test_*/fold*/fairness metric is the evaluated
    model's. Metrics: refit_*, explain_ms_per_row, n_trees."""
    booster, calibrator = searched.booster, final.calibrator
    explain_ms = searched.metrics["eval_explain_ms_per_row"]
    info: dict[str, Any] = {"refit": False}
    metrics: dict[str, float] = {}
    timings: dict[str, float] = {}
    if cfg.refit:
        res = searched.best
        t0 = time.perf_counter()
        rs = refit_slices(data.frame, data.spec, cfg)
        booster, calibrator, explain_ms = fit_recipe(
            res.params, res.rounds or cfg.search.max_rounds, data.X, data.y, rs.fit,
            rs.calibration, cfg, data.names)
        timings["refit_seconds"] = time.perf_counter() - t0
        info = {"refit": True, "refit_rows": len(rs.fit),
                "refit_calibration_rows": len(rs.calibration)}
        if data.split == "temporal":
            fmt = (lambda v: period_label(v, True)) if data.is_date else str
            info.update(refit_max_as_of=fmt(rs.info["fit_end"]),
                        refit_calibration=f"{fmt(rs.info['calibration_start'])}.."
                                          f"{fmt(rs.info['calibration_end'])}")
            metrics["refit_periods_after_fold_fit"] = float(
                rs.info["fit_end"] - data.final.info["fit_end"])
        metrics["refit_rows"] = float(len(rs.fit))
        metrics["refit_calibration_rows"] = float(len(rs.calibration))
        metrics["refit_positives"] = float(data.y[rs.fit].sum())
    metrics["explain_ms_per_row"] = explain_ms
    metrics["n_trees"] = float(booster.num_trees())
    return Registered(booster, calibrator, explain_ms, info, metrics, timings)


# --- the need model: entry model + visit outcomes (docs/need-learning.md) ------------------
NEED_METHOD = "offset"  # measured choice: docs/need-learning.md, "Decision"
BUDGET_SHARE_FOR_VISITS = 0.8  # of what the entry model leaves of the explanation budget


@dataclass
class NeedFit:
    """A need model fitted on visit rows and what serves it: `booster` (one LightGBM booster,
    entry + visit trees, `NeedModel.merged_booster`) with `calibrator`, or None at a cold
    start. `info`: need_model_* params for the run."""

    model: Any
    booster: Any
    calibrator: Calibrator | None
    info: dict[str, Any]


def _visit_rows(visits: pd.DataFrame | None, spec: TableSpec, before: int | None
                ) -> pd.DataFrame:
    """Reached visits (y known), time strictly before period `before` (None: all). `visits`
    carries the table's entity and time columns, y, selection_prob and the features."""
    if visits is None or visits.empty:
        return pd.DataFrame(columns=[spec.entity, spec.time, "y", "selection_prob"])
    missing = [c for c in (spec.entity, spec.time, "y", "selection_prob")
               if c not in visits.columns]
    if missing:
        raise ValueError(f"the visit table lacks columns {missing}")
    v = visits[visits["y"].notna()]
    if before is not None:
        v = v[to_periods(v[spec.time]) < before]
    return v.reset_index(drop=True)


def fit_need(
    data: Prepared, cfg: RunConfig, entry: Any, visits: pd.DataFrame, label: str,
) -> NeedFit:
    """Fit `fit_need_model(method="offset", weighted=False)` on reached `visits` over the
    `entry` booster, its visit trees capped to `BUDGET_SHARE_FOR_VISITS` of what the entry
    model's leaves (priced at `ns_per_leaf`) leave of the explanation budget, and calibrate
    the combined score on the visit rows (all of them, unweighted: docs/training.md,
    "Learning need from visits"). Cold start (too
    few visits, one outcome class, or no budget left): NeedFit(model, None, None, info) and a
    log line. `label` names the fit in the log ("evaluated" / "registered")."""
    from safetynet.training.need_model import fit_need_model, leaf_budget_for

    budget = cfg.search.explain_budget_ms
    # the entry model's cost from its leaf count (as the search prices trees), not the
    # measured `entry_ms`: a timing would make the visit model depend on the machine's load
    entry_cost = total_leaves(entry) * cfg.search.ns_per_leaf * 1e-6
    left = None if budget is None else (budget - entry_cost) * BUDGET_SHARE_FOR_VISITS
    info: dict[str, Any] = {"need_model_method": NEED_METHOD, "need_model_visits": len(visits),
                            "need_model_positives": int(visits["y"].sum()) if len(visits) else 0,
                            "need_model_audit_visits": int(visits["audit"].sum())
                            if "audit" in visits and len(visits) else 0}
    if len(visits) == 0 or (left is not None and left <= 0):
        reason = "no visits" if len(visits) == 0 else "no explanation budget left"
        log.warning("need model (%s): cold start, %s: the entry model is used as it is",
                    label, reason)
        return NeedFit(None, None, None, {**info, "need_model_cold_start": True,
                                          "need_model_cold_start_reason": reason})
    Xv = visits.reindex(columns=data.names).to_numpy(dtype=np.float32, na_value=np.nan)
    yv = visits["y"].to_numpy(dtype=np.float64)
    model = fit_need_model(
        entry.predict(Xv, raw_score=True), Xv, yv,
        visits["selection_prob"].to_numpy(dtype=np.float64),
        households=visits[data.spec.entity].astype(str).to_numpy(), method=NEED_METHOD,
        weighted=False, leaf_budget=None if left is None else leaf_budget_for(left),
        seed=cfg.search.seed, feature_names=data.names)
    if model.cold_start:
        log.warning("need model (%s): cold start, %d visits (%d in hardship) are too few or "
                    "one class: the entry model is used as it is", label, len(visits),
                    int(yv.sum()))
        return NeedFit(model, None, None, {**info, "need_model_cold_start": True,
                                           "need_model_cold_start_reason": "too few visits"})
    booster = model.merged_booster(entry)
    calibrator = _calibrate(booster.predict(Xv), yv, cfg)
    info.update(need_model_cold_start=False, need_model_intercept=model.intercept,
                need_model_entry_weight=model.entry_weight,
                need_model_visit_rounds=int(model.info.get("rounds", 0)),
                need_model_visit_leaves=model.leaves())
    log.info("need model (%s): %d visits, %d in hardship, z = %.3f + %.3f z_entry + f(x) "
             "with %d visit trees", label, len(visits), int(yv.sum()), model.intercept,
             model.entry_weight, info["need_model_visit_rounds"])
    return NeedFit(model, booster, calibrator, info)


@dataclass
class NeedStep:
    """The evaluated need model on the final test: `final` is the combined score's view
    (calibrated and raw), `fit` the fitted model; metrics need_eval_*."""

    fit: NeedFit
    final: FinalFold
    metrics: dict[str, float]


def need_model_step(
    data: Prepared, cfg: RunConfig, searched: Searched, final: FinalFold,
    visits: pd.DataFrame | None,
) -> NeedStep | None:
    """Fit the need model over the evaluated entry model on the visits whose as-of month is
    strictly before the final test period (temporal honesty: the test's visits and later ones
    stay out), and score the test with it. None for tables without dates or visits
    (`visits` None): nothing to do. Visits carry the table's entity and time columns."""
    if visits is None or data.split != "temporal":
        return None
    before = int(data.final.info["test_start"])
    rows = _visit_rows(visits, data.spec, before)
    fit = fit_need(data, cfg, searched.booster, rows, "evaluated")
    metrics = {"need_eval_visits": float(len(rows)),
               "need_eval_cold_start": float(fit.booster is None)}
    if fit.booster is None:
        return NeedStep(fit, final, metrics)
    Xt = data.X[data.final.test]
    raw = fit.booster.predict(Xt)
    prob = fit.calibrator.transform(raw)
    metrics["need_eval_explain_ms_per_row"] = explain_ms_per_row(fit.booster, Xt)
    metrics["need_eval_n_trees"] = float(fit.booster.num_trees())
    yt = data.y[data.final.test]
    combined = M.evaluate(yt, prob, cfg.fractions)
    cap = f"precision_at_{M.pct_label(cfg.capacity_fraction)}"
    metrics[f"test_combined_{cap}"] = combined[cap]  # on the entry label, for reference
    view = FinalFold(fit.calibrator, prob, raw, final.metrics, final.best, final.baselines)
    return NeedStep(fit, view, metrics)


def refit_need_step(
    data: Prepared, cfg: RunConfig, registered: Registered, visits: pd.DataFrame | None,
) -> tuple[Registered, dict[str, Any]]:
    """The registered need model: refit on every reached visit over the registered entry
    booster. Returns the registered model (replaced unless a cold start) and its
    need_model_* params."""
    if visits is None or data.split != "temporal":
        return registered, {}
    rows = _visit_rows(visits, data.spec, None)
    fit = fit_need(data, cfg, registered.booster, rows, "registered")
    if fit.booster is None:
        return registered, fit.info
    ms = explain_ms_per_row(fit.booster, data.X[data.final.test])
    budget = cfg.search.explain_budget_ms
    if budget is not None and ms > budget:
        log.warning("the registered need model explains in %.3f ms per household, over the "
                    "%.3f ms budget (timing noise or a large visit model)", ms, budget)
    metrics = {**registered.metrics, "explain_ms_per_row": ms,
               "n_trees": float(fit.booster.num_trees()),
               "entry_explain_ms_per_row": registered.explain_ms,
               "need_model_visits": float(len(rows))}
    return Registered(fit.booster, fit.calibrator, ms, registered.info, metrics,
                      registered.timings), fit.info


def shap_sample(data: Prepared, cfg: RunConfig, booster: Any) -> tuple[np.ndarray, np.ndarray]:
    """(X rows, TreeSHAP contributions) of up to `cfg.shap_rows` seeded final-test rows for
    the beeswarm, from LightGBM's own `pred_contrib` on the registered model."""
    rng = np.random.default_rng(cfg.search.seed)
    test = data.final.test
    pick = rng.choice(len(test), min(cfg.shap_rows, len(test)), replace=False)
    Xs = data.X[test][pick]
    return Xs, booster.predict(Xs, pred_contrib=True)


def run(
    frame: pd.DataFrame, spec: TableSpec, cfg: RunConfig, visits: pd.DataFrame | None = None,
) -> Result:
    """Fit and evaluate on every fold; the last fold's model is the candidate, refitted on
    the latest labels for registration (`cfg.refit`).

    `visits` (household tables only; `training/visits.py` visit table): with enough reached
    visits the entry model is combined with a visit model (`need_model_step` on the visits
    before the test, `refit_need_step` on all of them); the need and fairness figures and
    the registered booster are then the combined model's, and the entry model's need figures
    are kept as `test_entry_need_*`. Without (or too few), the entry model as before."""
    t_start = time.perf_counter()
    data = prepare(frame, spec, cfg)
    searched = search_step(data, cfg)
    evaluation = evaluate_folds(data, cfg, searched)
    final = evaluation.final
    baseline = best_baseline(evaluation, cfg)
    metrics = {**searched.metrics, **evaluation.metrics}
    metrics.update(explanation_budget_cost(data, cfg, searched, final))
    metrics.update(oracle_metrics(data, cfg, final))
    wired = need_model_step(data, cfg, searched, final, visits)
    served = final
    if wired is not None:
        metrics.update(wired.metrics)
        if wired.fit.booster is not None:
            entry_need = need_evaluation(data, cfg, final, None)
            if entry_need is not None:
                metrics.update({"test_entry_" + k.removeprefix("test_"): v
                                for k, v in entry_need.metrics.items()
                                if k.startswith("test_need_")})
            served = wired.final
    need = need_evaluation(data, cfg, final, baseline, served.prob)
    if need is not None:
        metrics.update(need.metrics)
    fairness = fairness_step(data, cfg, served, baseline)
    metrics.update(fairness.metrics)
    registered = refit_step(data, cfg, searched, final)
    registered, need_info = refit_need_step(data, cfg, registered, visits)
    metrics.update(registered.metrics)
    need_params = {**(wired.fit.info if wired is not None else {}),
                   **{k.replace("need_model_", "need_model_refit_"): v
                      for k, v in need_info.items()}}
    sample = shap_sample(data, cfg, registered.booster)
    timings = {**searched.timings, **registered.timings,
               "total_seconds": time.perf_counter() - t_start}
    metrics.update({f"time_{k}": v for k, v in timings.items()})
    res, booster = searched.best, registered.booster
    unconstrained = searched.unconstrained
    return Result(
        metrics=metrics,
        params={**res.params, "n_trees": booster.num_trees(), "split": data.split,
                "calibration": registered.calibrator.method, "n_features": len(data.names),
                "rounds_cap": res.rounds, **registered.info,
                "search_trials": cfg.search.n_trials, "search_seed": cfg.search.seed,
                "explain_budget_ms": cfg.search.explain_budget_ms, "horizon": cfg.horizon,
                "capacity_fraction": cfg.capacity_fraction,
                **({"best_baseline": baseline.name} if baseline is not None else {}),
                **need_params},
        booster=booster,
        calibrator=registered.calibrator,
        features=data.names,
        fairness=fairness.table,
        folds=evaluation.folds,
        test_frame=fairness.test_frame,
        shap_sample=sample,
        trials=res.trials + ([{"unconstrained": True, **t} for t in unconstrained.trials]
                             if unconstrained else []),
        baselines=evaluation.baselines,
        split=data.split,
        label_positive_rate=float(data.y.mean()),
        timings=timings,
        input_example=data.X[data.final.test][:5],
        test_index=data.final.test,
        refit=registered.info,
        eval_booster=(wired.fit.booster if wired is not None and wired.fit.booster is not None
                      else searched.booster),
        eval_calibrator=served.calibrator,
        need_by_group=need.by_group if need is not None else None,
        need_model=need_params,
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
