"""What the caseworker page reads: worklists, stored reasons, score history, recorded visits,
and live scoring rows. Plain functions over an engine.

Names and addresses come from the identity vault (`safetynet.db.identity.identities`),
filtered in SQL to the caller's districts, so a caseworker's request never even reads another
district's names. They are shown on the page and never logged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from safetynet.db.tables import (
    score_history,
    score_reasons,
    score_runs,
    visit_outcomes,
    worklist_items,
)
from safetynet.features.definitions import FeatureText, fill_sentence, plain_text
from safetynet.monitoring.worklists import load_worklist
from safetynet.serving.features import FeatureSource, rows_to_matrix
from safetynet.serving.keys import Principal
from safetynet.serving.scoring import Batch, Scorer

IN_CHUNK = 500  # bound parameters per IN (...) list


def latest_run_id(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(score_runs.c.run_id))).scalar()


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


def stored_reasons(
    engine: Engine, run_id: str, keys: Sequence[str], n: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """The run's top-n stored reasons per household: feature, value, contribution."""
    out: dict[str, list[dict[str, Any]]] = {}
    keys = list(keys)
    with engine.connect() as conn:
        for i in range(0, len(keys), IN_CHUNK):
            rows = conn.execute(
                sa.select(score_reasons)
                .where(score_reasons.c.run_id == run_id, score_reasons.c.rank <= n,
                       score_reasons.c.household_key.in_(keys[i:i + IN_CHUNK]))
                .order_by(score_reasons.c.household_key, score_reasons.c.rank)
            ).mappings().all()
            for r in rows:
                out.setdefault(r["household_key"], []).append(dict(r))
    return out


def reason_text(reason: dict[str, Any], texts: dict[str, FeatureText], lang: str) -> str:
    """A stored reason as a plain-language sentence (the feature's template)."""
    name = reason["feature"]
    text = texts.get(name) or plain_text(name)
    value = reason.get("value")
    v = math.nan if value is None else float(value)
    return fill_sentence(text, v, lang)


def history_of(engine: Engine, key: str) -> list[dict[str, Any]]:
    """The household's score in every monitoring run, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(score_history.c.run_id, score_history.c.as_of_date, score_history.c.score,
                      score_history.c.tier, score_history.c.model_version)
            .where(score_history.c.household_key == key)
            .order_by(score_history.c.as_of_date)
        ).mappings().all()
    return [dict(r) for r in rows]


def outcomes_of(engine: Engine, key: str, limit: int = 20) -> list[dict[str, Any]]:
    """Recorded visits of the household, newest first (no free text: it may name people)."""
    cols = [visit_outcomes.c[c] for c in (
        "submission_id", "visit_date", "outcome", "hardship_type", "caseworker_key_id",
        "recorded_at", "disagrees_with_score")]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*cols).where(visit_outcomes.c.household_key == key)
            .order_by(visit_outcomes.c.visit_date.desc(), visit_outcomes.c.id.desc())
            .limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]


def worklist_item_id(engine: Engine, run_id: str | None, key: str) -> str | None:
    """The id of the household's item on the run's worklist, if it is on it."""
    if run_id is None:
        return None
    with engine.connect() as conn:
        return conn.execute(
            sa.select(worklist_items.c.item_id).where(
                worklist_items.c.run_id == run_id, worklist_items.c.household_key == key)
        ).scalar()


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
