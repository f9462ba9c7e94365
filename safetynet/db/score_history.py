"""Score history of the monitoring runs: the rows one run writes, and the previous run's scores.

A run is identified by its as-of date (`run_id` = ISO date). Its rows live in `score_history`,
`score_reasons`, `alerts`, `worklist_items`, `worklist_pools` and `score_runs`
(`safetynet.db.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from safetynet.db.bulk import bulk_insert
from safetynet.db.tables import (
    alerts,
    score_history,
    score_reasons,
    score_runs,
    worklist_items,
    worklist_pools,
)

RUN_TABLES = (score_reasons, alerts, worklist_items, worklist_pools, score_history, score_runs)
IN_CHUNK = 500  # bound parameters per IN (...) list


def previous_run(engine: Engine, as_of: date) -> tuple[str | None, pd.DataFrame]:
    """The latest run before `as_of` and its scores (household_key, score, tier, flagged)."""
    with engine.connect() as conn:
        prev = conn.execute(
            sa.select(score_runs.c.run_id)
            .where(score_runs.c.as_of_date < as_of)
            .order_by(score_runs.c.as_of_date.desc())
            .limit(1)
        ).scalar()
        if prev is None:
            return None, pd.DataFrame(columns=["household_key", "score", "tier", "flagged"])
        df = pd.read_sql(
            sa.select(
                score_history.c.household_key,
                score_history.c.score,
                score_history.c.tier,
                score_history.c.flagged,
            ).where(score_history.c.run_id == prev),
            conn,
        )
    return prev, df


def replace_run_rows(conn: Connection, run_id: str, rows: Mapping[sa.Table, pd.DataFrame]) -> bool:
    """Delete every stored row of `run_id` (its `score_runs` row included) and bulk-insert
    `rows` (table -> frame with the table's column names), in the caller's transaction.

    Returns True when an earlier run with this id was replaced. The new `score_runs` row is
    the caller's to insert (its summary includes the time these writes took).
    """
    replaced = False
    for table in RUN_TABLES:
        deleted = conn.execute(sa.delete(table).where(table.c.run_id == run_id)).rowcount
        replaced |= table is score_runs and deleted > 0
    for table, frame in rows.items():
        bulk_insert(conn, table, frame)
    return replaced


def latest_run_id(engine: Engine) -> str | None:
    """The id (ISO as-of date) of the latest stored run; None before the first run."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(score_runs.c.run_id))).scalar()


def stored_reasons(
    engine: Engine, run_id: str, keys: Sequence[str], n: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """The run's top-n stored reasons per household key: rows of `score_reasons` (feature,
    value, contribution, rank, ...), by rank; households without reasons are absent."""
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


def history_of(engine: Engine, key: str) -> list[dict[str, Any]]:
    """The household's score in every stored run, oldest first: run_id, as_of_date, score
    (calibrated probability, 0-1), tier, model_version."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(score_history.c.run_id, score_history.c.as_of_date, score_history.c.score,
                      score_history.c.tier, score_history.c.model_version)
            .where(score_history.c.household_key == key)
            .order_by(score_history.c.as_of_date)
        ).mappings().all()
    return [dict(r) for r in rows]


def worklist_item_id(engine: Engine, run_id: str | None, key: str) -> str | None:
    """The id of the household's item on the run's worklist; None when it is not on it (or
    `run_id` is None)."""
    if run_id is None:
        return None
    with engine.connect() as conn:
        return conn.execute(
            sa.select(worklist_items.c.item_id).where(
                worklist_items.c.run_id == run_id, worklist_items.c.household_key == key)
        ).scalar()
