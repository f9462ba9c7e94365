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
from typing import Any, Protocol

import numpy as np

from safetynet.config import Settings

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
    X = np.array(
        [[row.get(f) for f in features] for row in rows], dtype=float
    ) if rows else np.empty((0, len(features)))
    return X.reshape(len(rows), len(features))


def _compute(
    keys: Sequence[str], as_of: Sequence[str | None], rows: Sequence[dict[str, Any]],
    policy: dict[str, Any],
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


class IndicatorCache:
    """Indicators per household, remembered per (household, exact feature row).

    `compute_indicators` is pandas code with a fixed cost of ~10 ms a call whatever the batch
    size, most of a one-household request's budget. Indicators depend only on the row and
    the policy, so a result stays valid until the household's row changes; the key includes
    the row's values, so a rewritten online store is never answered from stale entries.
    """

    def __init__(self, policy: dict[str, Any], max_entries: int = 200_000) -> None:
        self.policy = policy
        self.max_entries = max_entries
        self._cache: dict[tuple, list[dict[str, Any]]] = {}

    def get(
        self, keys: Sequence[str], as_of: Sequence[str | None],
        rows: Sequence[dict[str, Any]] | None,
    ) -> list[list[dict[str, Any]]]:
        if rows is None:
            return [[] for _ in keys]
        ckeys = [(k, a, tuple(r.items())) for k, a, r in zip(keys, as_of, rows, strict=True)]
        miss = [i for i, ck in enumerate(ckeys) if ck not in self._cache]
        if miss:
            found = _compute([keys[i] for i in miss], [as_of[i] for i in miss],
                             [rows[i] for i in miss], self.policy)
            if len(self._cache) + len(miss) > self.max_entries:
                self._cache.clear()
            for i, ind in zip(miss, found, strict=True):
                self._cache[ckeys[i]] = ind
        return [self._cache[ck] for ck in ckeys]
