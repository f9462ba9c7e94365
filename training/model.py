"""LightGBM with early stopping, a seeded Optuna search with a fixed trial budget, and an
explanation budget.

TreeSHAP (LightGBM's `pred_contrib`) costs roughly a fixed time per tree leaf per row (about
86 ns here), so "explain one household in <= 0.5 ms on one core" becomes a budget on total
leaves = trees x leaves per tree. The budgeted search draws shallow trees (depth 2-4) and caps
the boosting rounds so the total fits; the chosen model is then timed for real and, if it is
still over budget, its trailing trees are cut until it fits.

Search cost. A trial costs (boosting rounds) x (rows x features per round). The budget's shallow
trees need more rounds than free ones, and a small learning rate needs more still, so the search
bounds rounds three ways: the rounds cap, Optuna's median pruner on the validation loss every
`prune_every` rounds (a trial whose loss is worse than the median of earlier trials at the same
round stops), and early stopping. TPE starts guided after `n_startup_trials` random trials
instead of Optuna's default 10 of 12. `min_learning_rate` can raise the learning-rate floor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np


@dataclass(frozen=True)
class SearchConfig:
    n_trials: int = 12
    seed: int = 0
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    num_threads: int = 2
    explain_budget_ms: float | None = 0.5  # None: unconstrained search
    ns_per_leaf: float = 86.0
    max_depth_range: tuple[int, int] = (2, 4)
    unconstrained_max_leaves: int = 127
    search_max_rows: int | None = 400_000  # trials subsample the fit rows; the winner is refit
    min_learning_rate: float = 0.02  # floor of the learning-rate range (ceiling 0.3)
    prune: bool = True  # median pruner on the validation loss
    prune_every: int = 10  # rounds between pruning checks
    prune_warmup: int = 50  # no pruning before this round
    n_startup_trials: int = 4  # random trials before TPE is guided

    @property
    def leaf_budget(self) -> int | None:
        if self.explain_budget_ms is None:
            return None
        return int(self.explain_budget_ms * 1e6 / self.ns_per_leaf)


@dataclass
class SearchResult:
    booster: lgb.Booster
    params: dict[str, Any]
    valid_score: float
    n_trees: int
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    rounds: int = 0


SMALL_DATA_ROWS = 100_000
BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "verbosity": -1,
    "feature_pre_filter": False,
    "bagging_freq": 1,
}


def train_booster(
    params: dict[str, Any],
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    num_boost_round: int,
    early_stopping_rounds: int,
    feature_names: list[str] | None = None,
) -> lgb.Booster:
    """One LightGBM fit with early stopping on the (temporal) validation slice."""
    names = feature_names or "auto"
    dtrain = lgb.Dataset(X_fit, y_fit, feature_name=names, free_raw_data=False)
    dvalid = lgb.Dataset(X_valid, y_valid, reference=dtrain)
    return lgb.train(
        {**BASE_PARAMS, **params},
        dtrain,
        num_boost_round=num_boost_round,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )


def _suggest(trial: Any, cfg: SearchConfig) -> tuple[dict[str, Any], int]:
    params: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", cfg.min_learning_rate, 0.3,
                                             log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 500, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        "seed": cfg.seed,
        "num_threads": cfg.num_threads,
        "force_col_wise": True,
    }
    rounds = cfg.max_rounds
    if cfg.leaf_budget is not None:
        depth = trial.suggest_int("max_depth", *cfg.max_depth_range)
        leaves = trial.suggest_int("num_leaves", 3, 2**depth)
        rounds = max(10, min(cfg.max_rounds, cfg.leaf_budget // leaves))
    else:
        depth = -1
        leaves = trial.suggest_int("num_leaves", 7, cfg.unconstrained_max_leaves, log=True)
    params.update(max_depth=depth, num_leaves=leaves)
    return params, rounds


def search(
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    cfg: SearchConfig,
    score_fn: Callable[[np.ndarray, np.ndarray], float],
    feature_names: list[str] | None = None,
) -> SearchResult:
    """Seeded TPE search over `cfg.n_trials`; objective = score_fn(y_valid, valid prediction)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if len(y_fit) < SMALL_DATA_ROWS:  # OpenMP threads only slow small fits on a busy machine
        cfg = SearchConfig(**{**cfg.__dict__, "num_threads": 1})
    t0 = time.perf_counter()
    sub = np.arange(len(y_fit))
    if cfg.search_max_rows and len(sub) > cfg.search_max_rows:
        sub = np.sort(
            np.random.default_rng(cfg.seed).choice(len(sub), cfg.search_max_rows, replace=False)
        )
    Xs, ys = X_fit[sub], y_fit[sub]
    names = feature_names or "auto"
    dtrain = lgb.Dataset(Xs, ys, feature_name=names, free_raw_data=False,
                         params={"feature_pre_filter": False, "verbosity": -1})
    dvalid = lgb.Dataset(X_valid, y_valid, reference=dtrain)
    kept: dict[str, Any] = {}

    def objective(trial: Any) -> float:
        params, rounds = _suggest(trial, cfg)
        trial.set_user_attr("rounds_cap", rounds)
        done = [0]
        t_trial = time.perf_counter()

        def watch(env: Any) -> None:  # count rounds; report the validation loss to the pruner
            done[0] = env.iteration + 1
            if cfg.prune and done[0] % cfg.prune_every == 0:
                _, _, loss, higher_better = env.evaluation_result_list[0]
                trial.report(loss if higher_better else -loss, done[0])
                if trial.should_prune():
                    trial.set_user_attr("iterations", done[0])
                    trial.set_user_attr("seconds", round(time.perf_counter() - t_trial, 2))
                    raise optuna.TrialPruned(f"pruned at round {done[0]}")

        booster = lgb.train(
            {**BASE_PARAMS, **params},
            dtrain,
            num_boost_round=rounds,
            valid_sets=[dvalid],
            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False), watch],
        )
        trial.set_user_attr("n_trees", booster.num_trees())
        trial.set_user_attr("iterations", done[0])
        trial.set_user_attr("seconds", round(time.perf_counter() - t_trial, 2))
        value = float(score_fn(y_valid, booster.predict(X_valid)))
        if not kept or value > kept["value"]:  # keep only the best booster in memory
            kept.update(value=value, booster=booster, number=trial.number)
        return value

    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=cfg.n_startup_trials,
                                    n_warmup_steps=cfg.prune_warmup,
                                    interval_steps=cfg.prune_every)
        if cfg.prune else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=cfg.n_startup_trials),
        pruner=pruner,
    )
    study.optimize(objective, n_trials=cfg.n_trials)
    best = study.best_trial
    params, rounds = _suggest(optuna.trial.FixedTrial(best.params), cfg)
    booster = kept["booster"]
    if len(sub) < len(y_fit):  # refit the winner on all fit rows
        booster = train_booster(
            params, X_fit, y_fit, X_valid, y_valid, rounds, cfg.early_stopping_rounds,
            feature_names,
        )
    trials = [
        {"number": t.number, "state": t.state.name, **t.params, **t.user_attrs,
         # a pruned trial's value would be its last reported loss, not the objective
         "value": t.value if t.state == optuna.trial.TrialState.COMPLETE else None}
        for t in study.trials
    ]
    return SearchResult(
        booster=booster,
        params=params,
        valid_score=float(best.value),
        n_trees=booster.num_trees(),
        trials=trials,
        seconds=time.perf_counter() - t0,
        rounds=rounds,
    )


def total_leaves(booster: lgb.Booster) -> int:
    dump = booster.dump_model(num_iteration=-1)
    return int(sum(t["num_leaves"] for t in dump["tree_info"]))


def explain_ms_per_row(booster: lgb.Booster, X: np.ndarray, n_rows: int = 200) -> float:
    """Median wall time of one single-row `pred_contrib` call on one thread, in ms."""
    rows = X[: min(n_rows, len(X))]
    booster.predict(rows[:1], pred_contrib=True, num_threads=1)  # warm up
    times = np.empty(len(rows))
    for i in range(len(rows)):  # single rows on purpose: this is what serving does
        t0 = time.perf_counter()
        booster.predict(rows[i : i + 1], pred_contrib=True, num_threads=1)
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1000)


def fit_to_budget(
    booster: lgb.Booster, X: np.ndarray, budget_ms: float, max_cuts: int = 5
) -> tuple[lgb.Booster, float]:
    """Cut trailing trees until explaining one row is within budget; returns (booster, ms)."""
    ms = explain_ms_per_row(booster, X)
    for _ in range(max_cuts):
        if ms <= budget_ms or booster.num_trees() <= 10:
            break
        keep = max(10, int(booster.num_trees() * budget_ms / ms * 0.95))
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=keep))
        ms = explain_ms_per_row(booster, X)
    return booster, ms
