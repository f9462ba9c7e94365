"""The identity vault: names and addresses keyed by pseudonym, outside the feature store and
the service database (its own SQLite file, `Settings.identity_path`).

Ingest writes it (`upsert_rows`); only the caseworker page reads it (`identities`), for the
caller's districts only. A row is replaced only by one known on or after its own
`knowledge_date`, so re-ingesting or ingesting deliveries out of order gives the same table.

    persons(person_key PRIMARY KEY, household_key, name, knowledge_date)
    households(household_key PRIMARY KEY, address, district, street, community, knowledge_date)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

IN_CHUNK = 500  # bound parameters per IN (...) list


@dataclass(frozen=True)
class VaultTable:
    """One vault table: text columns, `key` the primary key, `knowledge_date` an ISO date."""

    name: str
    key: str
    values: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column in stored order: key, values, knowledge_date."""
        return (self.key, *self.values, "knowledge_date")

    def ddl(self) -> str:
        rest = ", ".join(f"{c} TEXT" for c in self.columns[1:])
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({self.key} TEXT PRIMARY KEY, {rest});"

    def upsert_sql(self) -> str:
        names = self.columns
        return (f"INSERT INTO {self.name} ({', '.join(names)}) VALUES "
                f"({', '.join('?' * len(names))}) ON CONFLICT({self.key}) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in names[1:])
                + f" WHERE excluded.knowledge_date >= {self.name}.knowledge_date")


PERSONS = VaultTable("persons", "person_key", ("household_key", "name"))
HOUSEHOLDS = VaultTable("households", "household_key",
                        ("address", "district", "street", "community"))
TABLES = (PERSONS, HOUSEHOLDS)


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create if needed) the identity vault; `with connect(p) as con` is one
    transaction (committed on success, rolled back on error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript("\n".join(t.ddl() for t in TABLES))
    return con


def upsert_rows(con: sqlite3.Connection, table: VaultTable,
                batches: Iterable[pa.RecordBatch]) -> None:
    """Upsert record batches whose columns are `table.columns` in that order (text; the
    knowledge date as ISO `YYYY-MM-DD`), in `con`'s transaction. Rows sorted by key write
    fastest (SQLite then appends to its primary-key index)."""
    sql = table.upsert_sql()
    for batch in batches:  # columns via Arrow are cheaper than DB-API row tuples
        con.executemany(sql, zip(*(col.to_pylist() for col in batch.columns), strict=True))


def identities(
    path: Path, keys: Sequence[str], districts: frozenset[str] | None
) -> dict[str, dict[str, Any]]:
    """Names and address per household key, only for households in `districts`
    (None: every district, for admin keys): {key: {address, street, community, names}}.
    Empty when the vault does not exist or has no tables yet. Opened read-only."""
    keys = list(keys)
    if not keys or not path.exists():
        return {}
    if districts is not None and not districts:
        return {}
    out: dict[str, dict[str, Any]] = {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for i in range(0, len(keys), IN_CHUNK):
            chunk = keys[i:i + IN_CHUNK]
            where = f"h.household_key IN ({','.join('?' * len(chunk))})"
            params: list[Any] = list(chunk)
            if districts is not None:
                where += f" AND h.district IN ({','.join('?' * len(districts))})"
                params += sorted(districts)
            for key, address, street, community in con.execute(
                f"SELECT h.household_key, h.address, h.street, h.community "
                f"FROM {HOUSEHOLDS.name} h WHERE {where}", params
            ):
                out[key] = {"address": address, "street": street, "community": community,
                            "names": []}
            found = [k for k in chunk if k in out]
            if found:
                for key, name in con.execute(
                    f"SELECT household_key, name FROM {PERSONS.name} WHERE household_key IN "
                    f"({','.join('?' * len(found))}) ORDER BY person_key", found
                ):
                    if name:
                        out[key]["names"].append(name)
    except sqlite3.Error:  # no tables yet (nothing ingested): nothing to show
        return {}
    finally:
        con.close()
    return out
