"""Baselines every model run must beat, reported beside it.

- `IndicatorCount`: number of triggered early-warning indicators (the rules-based flag).
- `BestSingleFeature`: the one feature (and direction) that ranks best on the training data.
- `LogisticBaseline`: logistic regression on a proxy-means-test-style subset (income proxy,
  household size, dependency, assets), or on all numeric features for a table of your own.

All take a 2-D float array and the list of its column names; missing values are allowed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score


class IndicatorCount:
    """Score = number of indicator columns that are set (> 0)."""

    name = "indicator_count"

    def __init__(self, indicator_columns: Sequence[str]):
        self.indicator_columns = list(indicator_columns)

    def fit(self, X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> IndicatorCount:
        missing = [c for c in self.indicator_columns if c not in names]
        if missing or not self.indicator_columns:
            raise ValueError(f"indicator columns not in the table: {missing or 'none given'}")
        self._idx = [list(names).index(c) for c in self.indicator_columns]
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return (np.nan_to_num(X[:, self._idx], nan=0.0) > 0).sum(axis=1).astype(np.float64)


class BestSingleFeature:
    """Rank by the single feature with the best training average precision (either sign)."""

    name = "best_single_feature"

    def fit(self, X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> BestSingleFeature:
        best = (-1.0, 0, 1.0)
        for j in range(X.shape[1]):  # a loop over ~80 columns, each scored vectorised
            col = X[:, j]
            if np.all(np.isnan(col)) or np.nanstd(col) == 0:
                continue
            filled = np.where(np.isnan(col), np.nanmin(col), col)
            for sign in (1.0, -1.0):
                ap = average_precision_score(y, sign * filled)
                if ap > best[0]:
                    best = (ap, j, sign)
        if best[0] < 0:
            raise ValueError("no usable feature for the single-feature baseline")
        self.train_ap_, self.index_, self.sign_ = best
        self.feature_ = names[self.index_]
        col = X[:, self.index_]
        self._fill = float(np.nanmin(col)) if self.sign_ > 0 else float(np.nanmax(col))
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        col = X[:, self.index_]
        return self.sign_ * np.where(np.isnan(col), self._fill, col)


class LogisticBaseline:
    """Median-imputed, standardised logistic regression on a named feature subset."""

    name = "logistic_pmt"

    def __init__(self, features: Sequence[str] | None = None, max_rows: int = 200_000, seed=0):
        self.features = list(features) if features else None
        self.max_rows = max_rows
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> LogisticBaseline:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        wanted = self.features or list(names)
        self.used_ = [c for c in wanted if c in names]
        if not self.used_:
            raise ValueError(f"none of the logistic baseline features are in the table: {wanted}")
        self._idx = [list(names).index(c) for c in self.used_]
        Xs, ys = X[:, self._idx], y
        if len(ys) > self.max_rows:  # a linear baseline does not need a million rows
            pick = np.random.default_rng(self.seed).choice(len(ys), self.max_rows, replace=False)
            Xs, ys = Xs[pick], ys[pick]
        self.model_ = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(max_iter=500),
        ).fit(Xs, ys)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X[:, self._idx])[:, 1]
