"""Score history of the monitoring runs: the rows one run writes, and the previous run's scores.

A run is identified by its as-of date (`run_id` = ISO date). Its rows live in `score_history`,
`score_reasons`, `alerts`, `worklist_items`, `worklist_pools` and `score_runs`
(`safetynet.db.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

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
