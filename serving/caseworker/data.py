"""What the caseworker page reads beyond `safetynet.db`: the worklist a principal may see,
reason sentences and live scoring rows.

Score history, stored reasons and recorded visits are read through `safetynet.db.score_history`
and `safetynet.db.feedback`; names and addresses through the identity vault
(`safetynet.db.identity.identities`), filtered in SQL to the caller's districts, so a
caseworker's request never even reads another district's names. They are shown on the page and
never logged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from safetynet.features.definitions import FeatureText, fill_sentence, plain_text
from safetynet.monitoring.worklists import load_worklist
from safetynet.serving.features import FeatureSource, rows_to_matrix
from safetynet.serving.keys import Principal
from safetynet.serving.scoring import Batch, Scorer


def worklist_for(engine: Engine, who: Principal) -> pd.DataFrame:
    """The latest run's worklist items the principal may see (caseworker: own districts),
    by district then priority rank."""
    if who.role == "caseworker":
        parts = [load_worklist(engine, district=d) for d in sorted(who.districts)]
        parts = [p for p in parts if not p.empty]
        items = pd.concat(parts, ignore_index=True) if parts else load_worklist(engine).iloc[:0]
    else:
        items = load_worklist(engine)
    return items.sort_values(["district", "rank"], kind="stable").reset_index(drop=True)


def reason_text(reason: dict[str, Any], texts: dict[str, FeatureText], lang: str) -> str:
    """A stored reason as a plain-language sentence (the feature's template)."""
    name = reason["feature"]
    text = texts.get(name) or plain_text(name)
    value = reason.get("value")
    v = math.nan if value is None else float(value)
    return fill_sentence(text, v, lang)


def build_batch(
    scorer: Scorer, source: FeatureSource, keys: Sequence[str], features: Sequence[str]
) -> tuple[Batch, list[dict[str, Any] | None]]:
    """Online-store rows of `keys` as a scoring batch (rows that are missing are skipped);
    also returns the rows by position of `keys` (None when unknown).

    Mirrors `SafetyNet._households` without its HTTP errors: the page decides per household.
    """
    rows = source.get_many(list(keys))
    known = [(k, r) for k, r in zip(keys, rows, strict=True) if r is not None]
    ids = [k for k, _ in known]
    found = [r for _, r in known]
    X = rows_to_matrix(found, features)
    as_of = [None if r.get("as_of_date") is None else str(r["as_of_date"])[:10] for r in found]
    extra_names = sorted({f for rule in scorer.rules for f in rule.features()} - set(features))
    extra = {name: rows_to_matrix(found, [name])[:, 0] for name in extra_names}
    if not found:
        X = np.empty((0, len(features)))
    return Batch(ids, X, as_of, extra, found), rows
