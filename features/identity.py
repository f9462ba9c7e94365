"""Ingest's side of the identity vault (`safetynet.db.identity`): upsert the accepted persons
and households of a delivery, all or nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb

from safetynet.db.identity import TABLES, connect, upsert_rows

BATCH = 200_000


def upsert_identity(path: Path, duck: duckdb.DuckDBPyConnection) -> None:
    """Upsert accepted persons and households of the ingest in `duck` (work_* tables)."""
    present = {r[0] for r in duck.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    with connect(path) as con:  # one transaction: all or nothing
        for table in TABLES:
            if f"work_{table.name}" not in present:
                continue
            *names, _ = table.columns
            reader = duck.sql(
                f"SELECT {', '.join(names)}, CAST(knowledge_date AS VARCHAR) "
                f"FROM work_{table.name} WHERE _r IS NULL ORDER BY {table.key}"
            ).to_arrow_reader(BATCH)
            upsert_rows(con, table, reader)
