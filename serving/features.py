"""The seam to the feature store: household rows from the online store, feature metadata,
and early-warning indicators.

The online store (`safetynet.features.online.OnlineStore`) returns, per household key, a
dict of feature values plus `as_of_date` and `district`. Feature sentences come from
`safetynet.features.definitions`; indicators from `safetynet.features.indicators`. Each is
imported lazily so the service still scores caller-given records while one is missing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

import numpy as np

from safetynet.config import Settings
from safetynet.policy import IndicatorsPolicy

log = logging.getLogger(__name__)

META_FIELDS = ("household_key", "as_of_date", "district")


class FeatureSource(Protocol):
    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]: ...


class StaticFeatureSource:
    """Rows held in memory (for tests, benchmarks and offline use); same contract as the store."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return [self.rows.get(k) for k in keys]


_override: FeatureSource | None = None


def set_feature_source(source: FeatureSource | None) -> None:
    """Make `open_feature_source` return `source` (tests and benchmarks; None resets)."""
    global _override
    _override = source


def open_feature_source(settings: Settings) -> FeatureSource | None:
    """The configured online store (SQLite or Redis), or None when it is not installed."""
    if _override is not None:
        return _override
    try:
        from safetynet.features.online import open_online_store
    except ImportError:
        log.warning("safetynet.features.online is not available: only `records` can be scored")
        return None
    return open_online_store(settings)


@dataclass(frozen=True)
class FeatureText:
    """Sentences of one feature; `{value}` in a template is replaced by the value."""

    name: str
    template_en: str
    template_zh: str
    dimension: str | None = None


def _definitions() -> dict[str, Any]:
    try:
        from safetynet.features import definitions  # type: ignore[attr-defined]
    except ImportError:
        return {}
    for attr in ("FEATURES", "FEATURE_DEFINITIONS", "DEFINITIONS"):
        defs = getattr(definitions, attr, None)
        if defs is not None:
            if isinstance(defs, dict):
                return dict(defs)
            return {d.name: d for d in defs}
    return {}


def feature_texts(names: Sequence[str]) -> dict[str, FeatureText]:
    """Sentence templates for `names` (a plain `name = value` where none is defined)."""
    defs = _definitions()
    out = {}
    for name in names:
        d = defs.get(name)
        en = getattr(d, "template_en", None) or f"{name} = {{value:g}}"
        zh = getattr(d, "template_zh", None) or f"{name} = {{value:g}}"
        out[name] = FeatureText(name, en, zh, getattr(d, "dimension", None))
    return out


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


def _compute(
    keys: Sequence[str], as_of: Sequence[str | None], rows: Sequence[dict[str, Any]],
    policy: IndicatorsPolicy,
) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[] for _ in keys]
    try:
        from safetynet.features.definitions import output_columns
        from safetynet.features.indicators import compute_indicators
    except ImportError:
        return out
    import pandas as pd

    frame = pd.DataFrame.from_records(list(rows))
    frame = frame.reindex(columns=sorted(set(frame.columns) | set(output_columns())))
    frame["household_key"] = [f"#{i}" for i in range(len(keys))]  # positions: keys may repeat
    frame["as_of_date"] = list(as_of)
    try:
        found = compute_indicators(frame, policy)
    except Exception:  # an indicator bug must not take scoring down; it is logged
        log.exception("computing indicators failed")
        return out
    if found.empty:
        return out
    trig = found["triggered_on"].astype(str).str[:10].where(found["triggered_on"].notna(), None)
    for pos, ind, when, evidence in zip(
        found["household_key"].str[1:].astype(int), found["indicator_id"].astype(str),
        trig, found["evidence"], strict=True,
    ):
        out[pos].append({
            "indicator_id": ind, "triggered_on": when,
            "evidence": json.loads(evidence) if isinstance(evidence, str) else None,
        })
    return out


class _Column(np.ndarray):
    """A float column that also answers `.fillna`, so the indicator rules (written for pandas
    Series) run on plain NumPy arrays."""

    def fillna(self, value: float) -> _Column:
        return np.where(np.isnan(self), value, self).view(_Column)


class _Columns:
    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows = rows
        self._cache: dict[str, _Column] = {}

    def __getitem__(self, name: str) -> _Column:
        col = self._cache.get(name)
        if col is None:
            values = [r.get(name) for r in self.rows]
            col = np.array([np.nan if v is None else v for v in values], dtype=float)
            col = self._cache[name] = col.view(_Column)
        return col


def fast_indicators(
    as_of: Sequence[str | None], rows: Sequence[dict[str, Any]], policy: IndicatorsPolicy
) -> list[list[dict[str, Any]]] | None:
    """The indicators of `safetynet.features.indicators` evaluated on NumPy columns.

    Same rules, thresholds, evidence and trigger dates as `compute_indicators` (a test checks
    they agree) without its fixed pandas cost of ~10 ms a call, which would be most of a
    one-household request. Returns None when a rule needs more than this shim offers; the
    caller then uses `compute_indicators`.
    """
    try:
        from safetynet.features.indicators import INDICATORS, _thresholds
    except ImportError:
        return [[] for _ in rows]
    try:
        p = _thresholds(policy)
        cols = _Columns(rows)
        out: list[list[dict[str, Any]]] = [[] for _ in rows]
        with np.errstate(invalid="ignore"):
            for ind in INDICATORS:
                mask = np.asarray(ind.rule(cols, p), dtype=bool)  # NaN comparisons are False
                hits = np.flatnonzero(mask)
                if not len(hits):
                    continue
                names = ind.evidence(p)
                thresholds = {k: p[k] for k in ind.thresholds}
                for i in hits.tolist():
                    row = rows[i]
                    evidence: dict[str, Any] = {}
                    for n in names:
                        v = row.get(n)
                        evidence[n] = None if v is None else round(float(v), 6)
                    evidence["thresholds"] = thresholds
                    when = row.get(ind.triggered_on) if ind.triggered_on else None
                    when = when or as_of[i]
                    out[i].append({"indicator_id": ind.id,
                                   "triggered_on": None if when is None else str(when)[:10],
                                   "evidence": evidence})
        return out
    except (AttributeError, TypeError, KeyError, ValueError):
        return None


class Indicators:
    """Early-warning indicators for a batch: the NumPy evaluation, or `compute_indicators`
    when the rules need more than it offers."""

    def __init__(self, policy: IndicatorsPolicy) -> None:
        self.policy = policy

    def get(
        self, keys: Sequence[str], as_of: Sequence[str | None],
        rows: Sequence[dict[str, Any]] | None,
    ) -> list[list[dict[str, Any]]]:
        if rows is None:
            return [[] for _ in keys]
        found = fast_indicators(as_of, rows, self.policy)
        return found if found is not None else _compute(keys, as_of, rows, self.policy)
