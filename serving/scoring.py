"""Scoring: from a feature matrix to results with tiers, reasons, indicators and programmes.

Pure with respect to HTTP: the service and the monitoring run (in-process batch) share it.
The hot path is NumPy only; pandas appears only inside the indicator module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from safetynet.features.definitions import FeatureText, feature_texts
from safetynet.model import Bundle, tiers_of
from safetynet.policy import Policy
from safetynet.serving.explain import all_contributions, top_reasons
from safetynet.serving.features import Indicators
from safetynet.serving.programs import ProgrammeRule, load_rules, match_programmes


@dataclass
class Batch:
    """Rows to score: ids, the model matrix, as-of dates and any non-model fields."""

    ids: list[str]
    X: np.ndarray
    as_of: list[str | None]
    extra: dict[str, np.ndarray]
    rows: list[dict[str, Any]] | None = None  # full store rows (for indicators); None: records


def _as_rows(X: np.ndarray, features: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(features, row, strict=True)) for row in X.tolist()]


class Scorer:
    """Turns a model bundle and a batch into API results (plain dicts)."""

    def __init__(self, policy: Policy, reasons: int = 5, indicators: bool = True) -> None:
        self.policy = policy
        self.thresholds = policy.tiers.thresholds()
        self.rules: list[ProgrammeRule] = load_rules(policy.programmes)
        self.rule_features = {f for r in self.rules for f in r.features()}
        self.k = reasons
        self.indicators = Indicators(policy.indicators) if indicators else None
        self._texts: dict[tuple[str, ...], dict[str, FeatureText]] = {}

    def texts(self, features: Sequence[str]) -> dict[str, FeatureText]:
        key = tuple(features)
        if key not in self._texts:
            self._texts[key] = feature_texts(features)
        return self._texts[key]

    def score(
        self, bundle: Bundle, batch: Batch, lang: str = "en", k: int | None = None
    ) -> list[dict[str, Any]]:
        features = bundle.features
        prob, contrib = bundle.predict(batch.X)
        tiers = tiers_of(prob, self.thresholds)
        reasons = top_reasons(
            contrib, batch.X, features, self.texts(features), self.k if k is None else k, lang
        )
        wanted = self.rule_features
        columns = {f: batch.X[:, j] for j, f in enumerate(features) if f in wanted}
        columns |= batch.extra
        programmes = match_programmes(self.rules, columns, len(batch.ids), lang)
        indicators = (
            self.indicators.get(batch.ids, batch.as_of,
                                batch.rows or _as_rows(batch.X, features))
            if self.indicators is not None else [[] for _ in batch.ids]
        )
        model = {"name": bundle.name, "version": str(bundle.version), "alias": bundle.alias}
        return [
            {
                "household_id": hid, "risk_score": float(p), "risk_tier": str(t), "model": model,
                "features_as_of": asof, "reasons": r, "indicators": ind, "programs": prog,
            }
            for hid, p, t, asof, r, ind, prog in zip(
                batch.ids, prob, tiers, batch.as_of, reasons, indicators, programmes, strict=True
            )
        ]

    def explain(self, bundle: Bundle, batch: Batch) -> dict[str, Any]:
        """Full contributions for the single row in `batch`."""
        prob, contrib = bundle.predict(batch.X[:1])
        row = contrib[0]
        return {
            "household_id": batch.ids[0],
            "model": {"name": bundle.name, "version": str(bundle.version), "alias": bundle.alias},
            "features_as_of": batch.as_of[0],
            "risk_score": float(prob[0]),
            "raw_score": float(row.sum()),
            "base_value": float(row[-1]),
            "contributions": all_contributions(row, batch.X[0], bundle.features),
        }
