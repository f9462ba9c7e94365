"""Serving's side of the feature store: household rows, their model matrix, and the
early-warning indicators of a batch.

Rows come from the online store through `safetynet.features.feature_store.FeatureStore`: per
household key, a dict of feature values plus `as_of_date` and `district`. Sentence templates
live with the feature definitions (`safetynet.features.definitions.feature_texts`); indicator
rules in `safetynet.features.indicators`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Protocol

import numpy as np

from safetynet.config import Settings
from safetynet.features.feature_store import FeatureStore
from safetynet.features.indicators import indicators_by_row
from safetynet.policy import IndicatorsPolicy

log = logging.getLogger(__name__)


class FeatureSource(Protocol):
    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]: ...


def open_feature_source(settings: Settings) -> FeatureSource:
    """The feature store's online rows (SQLite or Redis, per settings)."""
    return FeatureStore(settings)


def rows_to_matrix(rows: Sequence[dict[str, Any]], features: Sequence[str]) -> np.ndarray:
    """Model matrix in the model's feature order; absent or None values become NaN."""
    if not rows:
        return np.empty((0, len(features)))
    if len(features) == 1:
        name = features[0]
        return np.array([row.get(name) for row in rows], dtype=float).reshape(-1, 1)
    pick = itemgetter(*features)  # C-level lookups: half the cost of a row.get comprehension
    try:
        values = [pick(row) for row in rows]
    except KeyError:  # a row lacks a feature: absent means missing
        values = [[row.get(f) for f in features] for row in rows]
    return np.array(values, dtype=float).reshape(len(rows), len(features))


class Indicators:
    """Early-warning indicators for a batch (`indicators_by_row`: NumPy, no pandas)."""

    def __init__(self, policy: IndicatorsPolicy) -> None:
        self.policy = policy

    def get(
        self, keys: Sequence[str], as_of: Sequence[str | None],
        rows: Sequence[dict[str, Any]] | None,
    ) -> list[list[dict[str, Any]]]:
        """Per key, its raised indicators; none for `records` (rows None) or when the rules
        fail (logged: an indicator bug must not take scoring down)."""
        if rows is None:
            return [[] for _ in keys]
        try:
            return indicators_by_row(rows, as_of, self.policy)
        except Exception:
            log.exception("computing indicators failed")
            return [[] for _ in keys]
