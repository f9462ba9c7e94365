"""The identity table: names and addresses keyed by pseudonym, outside the feature store.

Only the serving layer reads it (by role), to show caseworkers who and where a flagged
household is. Ingest upserts it: a row is replaced only by one known on or after its own
`knowledge_date`, so re-ingesting or ingesting deliveries out of order gives the same table.

    persons(person_key PRIMARY KEY, household_key, name, knowledge_date)
    households(household_key PRIMARY KEY, address, district, street, community, knowledge_date)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb

SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    person_key TEXT PRIMARY KEY, household_key TEXT, name TEXT, knowledge_date TEXT);
CREATE TABLE IF NOT EXISTS households (
    household_key TEXT PRIMARY KEY, address TEXT, district TEXT, street TEXT, community TEXT,
    knowledge_date TEXT);
"""
_UPSERT = {
    "persons": ("person_key", ["household_key", "name"]),
    "households": ("household_key", ["address", "district", "street", "community"]),
}
BATCH = 200_000


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create if needed) the identity database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    return con


def upsert_identity(path: Path, duck: duckdb.DuckDBPyConnection) -> None:
    """Upsert accepted persons and households of the ingest in `duck` (work_* tables)."""
    present = {r[0] for r in duck.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    with connect(path) as con:  # one transaction: all or nothing
        for name, (key, cols) in _UPSERT.items():
            if f"work_{name}" not in present:
                continue
            names = [key, *cols, "knowledge_date"]
            sql = (f"INSERT INTO {name} ({', '.join(names)}) VALUES "
                   f"({', '.join('?' * len(names))}) ON CONFLICT({key}) DO UPDATE SET "
                   + ", ".join(f"{c} = excluded.{c}" for c in names[1:])
                   + f" WHERE excluded.knowledge_date >= {name}.knowledge_date")
            # in key order: SQLite then appends to its primary-key index instead of
            # jumping around it; columns via Arrow are cheaper than DB-API row tuples
            reader = duck.sql(
                f"SELECT {', '.join(names[:-1])}, CAST(knowledge_date AS VARCHAR) "
                f"FROM work_{name} WHERE _r IS NULL ORDER BY {key}").to_arrow_reader(BATCH)
            for batch in reader:
                con.executemany(sql, zip(*(col.to_pylist() for col in batch.columns),
                                         strict=True))
