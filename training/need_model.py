"""Learning *need* from what an office has: an entry model plus visit and audit outcomes.

The entry model (`safetynet train`) ranks households by the chance they *enter assistance*,
which only happens when they apply. Visits answer a different question, "is this household in
hardship now?", for two kinds of households: the listed ones (chosen by the score, selection
probability 1) and a random audit of the unlisted (selection probability p, logged). Weighted
by 1/p, visit rows stand for the whole cohort (Horvitz-Thompson), so a model fitted on them
learns need where the entry label is silent (households that never apply).

`fit_need_model` combines the two on the log-odds scale, so the combined margin and its TreeSHAP
contributions stay exact sums of the component boosters' `pred_contrib` outputs:

- ``method="offset"`` (the default, unweighted; figures in docs/need-learning.md): recalibrate
  the entry margin on the visit rows, ``z0 = a + b * z_entry`` (logistic regression), then boost
  a small LightGBM `f` on the visit rows with ``z0`` as LightGBM's `init_score`. Combined margin
  ``z = a + b * z_entry + f(x)``; contributions ``b * phi_entry + phi_visit``, bias
  ``a + b * bias_entry + bias_visit``.
- ``method="stack"``: a visit model `g` fitted alone, its out-of-fold margins (households split
  `n_folds` ways) and the entry margin combined by weighted logistic regression,
  ``z = a + b * z_entry + c * g(x)``; contributions ``b * phi_entry + c * phi_visit``.

`NeedModel.merged_booster(entry_booster)` writes the combination as ONE LightGBM booster (scaled
entry trees, the intercept folded into the first tree, then the visit trees): its raw margin and
`pred_contrib` equal `margin` and `contributions`, so the served `safetynet.model.Bundle` and its
reasons need no change. Explaining it costs the sum of both boosters' TreeSHAP time.

Cold start: with no usable visit rows (none, a single outcome class, or fewer than
`min_visits`) the result is the entry model unchanged (a = 0, b = 1, no visit booster).

Pure: arrays in, a `NeedModel` out; nothing here reads files or the simulator's truth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

METHODS = ("offset", "stack")
NS_PER_LEAF = 86.0  # TreeSHAP cost per leaf per row, as `training.model.SearchConfig`
VISIT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "max_depth": 3,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbosity": -1,
    "num_threads": 1,  # visit tables are small: OpenMP threads only slow them (model.py)
    "feature_pre_filter": False,
}


@dataclass(frozen=True)
class NeedModel:
    """Combined need log-odds: ``intercept + entry_weight * z_entry + visit_weight * f(x)``.

    `visit_booster` is None for the cold start (the entry model unchanged). `info` records what
    the fit saw (rows, weighted share of positives, rounds, method) for the model card.
    """

    intercept: float = 0.0
    entry_weight: float = 1.0
    visit_weight: float = 1.0
    visit_booster: lgb.Booster | None = None
    method: str = "offset"
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cold_start(self) -> bool:
        return self.visit_booster is None

    def visit_margin(self, X: np.ndarray) -> np.ndarray:
        """(n,) raw margin of the visit booster (0 at a cold start)."""
        if self.visit_booster is None:
            return np.zeros(len(X))
        return self.visit_booster.predict(np.asarray(X, dtype=np.float32), raw_score=True)

    def margin(self, entry_margin: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(n,) combined need log-odds from the entry model's raw margins (n,) and features
        (n, n_features) in the visit booster's column order."""
        z = _as_margin(entry_margin)
        _check_rows(z, X)
        return self.intercept + self.entry_weight * z + self.visit_weight * self.visit_margin(X)

    def predict_proba(self, entry_margin: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(n,) combined need probability (logistic of `margin`)."""
        return 1.0 / (1.0 + np.exp(-self.margin(entry_margin, X)))

    def contributions(self, entry_contrib: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(n, n_features + 1) exact SHAP contributions of the combined margin: feature
        columns, then the bias, as LightGBM's `pred_contrib`. `entry_contrib` is the entry
        booster's `predict(X, pred_contrib=True)` (same columns). Rows sum to `margin`."""
        phi = np.asarray(entry_contrib, dtype=np.float64)
        if phi.ndim != 2 or phi.shape[0] != len(X) or phi.shape[1] != np.shape(X)[1] + 1:
            raise ValueError(f"entry contributions must be (n, n_features + 1) = "
                             f"({len(X)}, {np.shape(X)[1] + 1}), got {phi.shape}")
        out = self.entry_weight * phi
        out[:, -1] += self.intercept
        if self.visit_booster is not None:
            visit = self.visit_booster.predict(np.asarray(X, dtype=np.float32),
                                               pred_contrib=True)
            out += self.visit_weight * visit
        return out

    def merged_booster(self, entry_booster: lgb.Booster) -> lgb.Booster:
        """One LightGBM booster whose raw margin is `margin` and whose `pred_contrib` is
        `contributions`: the entry trees with leaf values times `entry_weight` (the first
        tree's also plus `intercept`), then the visit trees times `visit_weight`. TreeSHAP is
        linear in the trees and in their leaf values, so this is exact (to float rounding) and
        the served `safetynet.model.Bundle` keeps one booster. Raises ValueError when the two
        boosters' feature names differ."""
        if self.visit_booster is not None and (
                list(entry_booster.feature_name()) != list(self.visit_booster.feature_name())):
            raise ValueError("the entry and visit boosters have different feature names")
        header, entry_trees, tail = _split_model(entry_booster.model_to_string())
        trees = [_scale_tree(t, self.entry_weight, self.intercept if i == 0 else 0.0)
                 for i, t in enumerate(entry_trees)]
        if self.visit_booster is not None:
            trees += [_scale_tree(t, self.visit_weight, 0.0)
                      for t in _split_model(self.visit_booster.model_to_string())[1]]
        body = "".join(f"Tree={i}\n{t}\n\n\n" for i, t in enumerate(trees))
        return lgb.Booster(model_str=header + body + tail)

    def leaves(self) -> int:
        """Total leaves of the visit booster (TreeSHAP cost is about linear in it)."""
        if self.visit_booster is None:
            return 0
        dump = self.visit_booster.dump_model()
        return int(sum(t["num_leaves"] for t in dump["tree_info"]))


def selection_weights(selection_prob: np.ndarray) -> np.ndarray:
    """(n,) inverse-probability weights 1/p scaled to mean 1 (the scale only matters for
    LightGBM's per-leaf minimums). Raises ValueError unless every p is in (0, 1]."""
    p = np.asarray(selection_prob, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(p <= 0) or np.any(p > 1):
        raise ValueError("selection_prob must be a 1-D array of probabilities in (0, 1]")
    w = 1.0 / p
    return w / w.mean() if len(w) else w


def fit_need_model(
    entry_margin: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    selection_prob: np.ndarray,
    *,
    households: np.ndarray | None = None,
    method: str = "offset",
    weighted: bool = False,
    leaf_budget: int | None = None,
    params: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    max_rounds: int = 600,
    min_visits: int = 50,
    seed: int = 0,
    feature_names: list[str] | None = None,
) -> NeedModel:
    """Fit the combined need model on visit rows.

    entry_margin: (n,) the entry booster's raw margin on the visited rows; X: (n, n_features)
    the same rows' model features; y: (n,) 1 = hardship confirmed at the visit, 0 = not (drop
    "could not reach" first); selection_prob: (n,) each visit's selection probability (1 for
    listed households, the audit's sampling probability for audited ones); households: (n,)
    household keys, so cross-validation never splits one household's months (default: rows
    are independent). `weighted` weighs rows by 1/selection_prob (a population-level fit);
    the default False fits the visits as they are: the list is chosen by a score of the same
    features, so P(hardship | x) is the same for listed and audited households and the weights
    only add variance (measured: docs/need-learning.md, -0.02 to -0.05 need precision).
    `leaf_budget` caps the visit booster's total leaves (explanation budget: leaves x 86 ns
    per household). Raises ValueError on bad shapes, labels or probabilities, or an unknown
    method.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    z = _as_margin(entry_margin)
    X = np.asarray(X, dtype=np.float32)
    _check_rows(z, X)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != z.shape or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be a 0/1 array with one value per visit row")
    w = selection_weights(selection_prob) if weighted else np.ones(len(z))
    if len(w) != len(z):
        raise ValueError(f"selection_prob has {len(w)} rows, the visits {len(z)}")
    groups = np.arange(len(z)) if households is None else np.asarray(households)
    if len(groups) != len(z):
        raise ValueError(f"households has {len(groups)} rows, the visits {len(z)}")
    info: dict[str, Any] = {"method": method, "weighted": weighted, "visits": len(z),
                            "positives": int(y.sum())}
    if len(z) < min_visits or y.min() == y.max():
        return NeedModel(method=method, info={**info, "cold_start": True})
    prm = {**VISIT_PARAMS, **(params or {}), "seed": seed}
    rounds_cap = _rounds_cap(max_rounds, prm, leaf_budget)
    folds = _folds(groups, n_folds, seed)
    if method == "offset":
        a, b = _logistic(z[:, None], y, w)
        init = a + b[0] * z
        rounds = _cv_rounds(X, y, w, init, folds, prm, rounds_cap, feature_names)
        booster = _train(X, y, w, init, prm, rounds, feature_names)
        return NeedModel(a, float(b[0]), 1.0, booster, method,
                         {**info, "rounds": rounds, "cold_start": False})
    rounds = _cv_rounds(X, y, w, None, folds, prm, rounds_cap, feature_names)
    oof = np.empty(len(z))
    for fit, held in folds:
        part = _train(X[fit], y[fit], w[fit], None, prm, rounds, feature_names)
        oof[held] = part.predict(X[held], raw_score=True)
    a, (b, c) = _logistic(np.column_stack([z, oof]), y, w)
    booster = _train(X, y, w, None, prm, rounds, feature_names)
    return NeedModel(a, float(b), float(c), booster, method,
                     {**info, "rounds": rounds, "cold_start": False})


def fit_visit_booster(
    X: np.ndarray,
    y: np.ndarray,
    selection_prob: np.ndarray,
    *,
    households: np.ndarray | None = None,
    weighted: bool = False,
    leaf_budget: int | None = None,
    params: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    max_rounds: int = 600,
    seed: int = 0,
    feature_names: list[str] | None = None,
) -> lgb.Booster:
    """A visit model alone (no entry margin): LightGBM on visit outcomes, rounds chosen by
    household-grouped cross-validation. Same arguments as `fit_need_model`."""
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    w = selection_weights(selection_prob) if weighted else np.ones(len(y))
    if len(w) != len(y) or len(X) != len(y):
        raise ValueError("X, y and selection_prob must have one row per visit")
    groups = np.arange(len(y)) if households is None else np.asarray(households)
    prm = {**VISIT_PARAMS, **(params or {}), "seed": seed}
    folds = _folds(groups, n_folds, seed)
    rounds = _cv_rounds(X, y, w, None, folds, prm, _rounds_cap(max_rounds, prm, leaf_budget),
                        feature_names)
    return _train(X, y, w, None, prm, rounds, feature_names)


def leaf_budget_for(budget_ms: float, ns_per_leaf: float = NS_PER_LEAF) -> int:
    """Total TreeSHAP leaves that fit `budget_ms` per household (as `SearchConfig`)."""
    if budget_ms <= 0:
        raise ValueError("the explanation budget must be positive")
    return int(budget_ms * 1e6 / ns_per_leaf)


def _split_model(text: str) -> tuple[str, list[str], str]:
    """LightGBM model text -> (header without `tree_sizes`, tree bodies without their
    `Tree=i` line, the rest from `end of trees`)."""
    start, end = text.index("\nTree=0\n") + 1, text.index("end of trees")
    header = "".join(line for line in text[:start].splitlines(keepends=True)
                     if not line.startswith("tree_sizes="))
    blocks = [b.strip() for b in re.split(r"^Tree=\d+$", text[start:end], flags=re.M)]
    return header, [b for b in blocks if b], text[end:]


def _scale_tree(body: str, weight: float, shift: float) -> str:
    """A tree body with leaf (and internal) values times `weight`, leaf values plus `shift`."""
    out = []
    for line in body.splitlines():
        key, _, values = line.partition("=")
        if key in ("leaf_value", "internal_value"):
            add = shift if key == "leaf_value" else 0.0
            line = key + "=" + " ".join(repr(float(v) * weight + add) for v in values.split())
        out.append(line)
    return "\n".join(out)


def _as_margin(entry_margin: np.ndarray) -> np.ndarray:
    z = np.asarray(entry_margin, dtype=np.float64)
    if z.ndim != 1 or not np.all(np.isfinite(z)):
        raise ValueError("entry margins must be a 1-D array of finite log-odds")
    return z


def _check_rows(z: np.ndarray, X: np.ndarray) -> None:
    if np.ndim(X) != 2 or len(X) != len(z):
        raise ValueError(f"X must be (n, n_features) with n = {len(z)} rows, "
                         f"got shape {np.shape(X)}")


def _rounds_cap(max_rounds: int, params: Mapping[str, Any], leaf_budget: int | None) -> int:
    if leaf_budget is None:
        return max_rounds
    return max(1, min(max_rounds, leaf_budget // int(params["num_leaves"])))


def _folds(groups: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Household-grouped folds (GroupKFold over shuffled group codes, so seeded)."""
    uniq, codes = np.unique(groups, return_inverse=True)
    k = max(2, min(n_folds, len(uniq)))
    shuffled = np.random.default_rng(seed).permutation(len(uniq))[codes]
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=shuffled))


def _logistic(Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted (nearly unpenalised) logistic regression of y on the columns of Z."""
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(Z, y, sample_weight=w)
    return float(lr.intercept_[0]), lr.coef_[0].astype(np.float64)


def _dataset(X, y, w, init, names) -> lgb.Dataset:
    return lgb.Dataset(X, y, weight=w, init_score=init, feature_name=names or "auto",
                       free_raw_data=False, params={"verbosity": -1,
                                                    "feature_pre_filter": False})


def _cv_rounds(X, y, w, init, folds, params, cap, names) -> int:
    """Boosting rounds at the best mean held-out weighted log loss over the folds."""
    res = lgb.cv({**params, "metric": "binary_logloss"}, _dataset(X, y, w, init, names),
                 num_boost_round=cap, folds=folds, stratified=False,
                 callbacks=[lgb.early_stopping(30, verbose=False)])
    return max(1, len(next(iter(res.values()))))


def _train(X, y, w, init, params, rounds, names) -> lgb.Booster:
    return lgb.train(dict(params), _dataset(X, y, w, init, names), num_boost_round=rounds)
