"""Online feature store: the latest features per household, for serving.

`OnlineStore.write(frame)` keeps each household's row at its latest as-of date and replaces
the store's contents (SQLite: in one transaction; Redis: each household's document replaced
whole, then households no longer present removed), so a reader never sees a half-written row.
`get(key)` returns {"household_key", "as_of_date", "district", audit attributes, features,
evidence dates}: the same values the offline build produced (dates as ISO strings, missing
values as None).

Values are stored as one JSON document per household: a single-key lookup is one indexed read
plus one `json.loads`, well under a millisecond on both backends.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd

from safetynet.config import get_settings
from safetynet.features.definitions import FEATURES_BY_NAME, output_columns


def latest_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per household: its latest as-of date."""
    frame = frame.sort_values(["household_key", "as_of_date"], kind="stable")
    return frame.drop_duplicates("household_key", keep="last")


def to_documents(source: pd.DataFrame | Path | str) -> list[tuple[str, str]]:
    """(household_key, JSON document) for the latest row of every household in `source`
    (a feature frame or a feature Parquet file).

    DuckDB writes the JSON: vectorised, and doubles keep their shortest round-trip form, so
    a value read back is bit-identical to the offline one.
    """
    con = duckdb.connect()
    if isinstance(source, pd.DataFrame):
        con.register("src", source)
        cols = set(source.columns)
    else:
        path = str(source).replace("'", "''")
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet('{path}')")
        cols = {r[0] for r in con.execute("DESCRIBE src").fetchall()}
    fields = []
    for c in (c for c in output_columns() if c in cols):
        kind = FEATURES_BY_NAME[c].dtype if c in FEATURES_BY_NAME else None
        value = (f"strftime(CAST({c} AS DATE), '%Y-%m-%d')"
                 if c == "as_of_date" or kind == "date" else c)
        fields.append(f"{c} := {value}")
    sql = (f"SELECT CAST(household_key AS VARCHAR), to_json(struct_pack({', '.join(fields)})) "
           "FROM src QUALIFY row_number() OVER (PARTITION BY household_key "
           "ORDER BY as_of_date DESC) = 1")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


class OnlineStore(Protocol):
    def write(self, frame: pd.DataFrame | Path) -> int: ...
    def get(self, household_key: str) -> dict[str, Any] | None: ...
    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]: ...


class SQLiteOnlineStore:
    """Online store in one SQLite file (the default)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            # A rowid table: documents are ~3 KB, too large for WITHOUT ROWID to pay off.
            con.execute("CREATE TABLE IF NOT EXISTS features (household_key TEXT PRIMARY KEY, "
                        "doc TEXT NOT NULL)")
            self._con = con
        return self._con

    def write(self, frame: pd.DataFrame | Path) -> int:
        """Replace the store with the latest row per household of `frame` (or a Parquet file)."""
        docs = to_documents(frame)
        con = self._connect()
        with con:  # one transaction: readers see the old or the new store, never a mix
            con.execute("DELETE FROM features")
            con.executemany("INSERT INTO features VALUES (?, ?)", docs)
        return len(docs)

    def get(self, household_key: str) -> dict[str, Any] | None:
        rows = self._connect().execute("SELECT doc FROM features WHERE household_key = ?",
                                       (household_key,)).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        found: dict[str, str] = {}
        con = self._connect()
        for chunk in _chunks(list(keys), 500):
            marks = ",".join("?" * len(chunk))
            found.update(con.execute(f"SELECT household_key, doc FROM features WHERE "
                                     f"household_key IN ({marks})", chunk).fetchall())
        return [json.loads(found[k]) if k in found else None for k in keys]

    def count(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM features").fetchall()[0][0]

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class RedisOnlineStore:
    """Online store in Redis: `<prefix>:<household_key>` -> JSON document.

    A materialization overwrites documents in batches (each household's document is replaced
    whole, so a reader sees its old or its new row) and then removes households that are no
    longer in the build. One GET per lookup.
    """

    def __init__(self, url: str, prefix: str = "safetynet:features"):
        import redis  # only with the Redis backend: its import alone takes over a second

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix

    def _key(self, household_key: str) -> str:
        return f"{self.prefix}:{household_key}"

    def _keys(self) -> Iterable[bytes]:
        return self.client.scan_iter(f"{self.prefix}:*", count=10_000)

    def write(self, frame: pd.DataFrame | Path) -> int:
        """Write the latest row per household, then drop households no longer present."""
        docs = to_documents(frame)
        for i in range(0, len(docs), 10_000):
            self.client.mset({self._key(k): d for k, d in docs[i:i + 10_000]})
        keep = {self._key(k).encode() for k, _ in docs}
        self._unlink(k for k in self._keys() if k not in keep)
        return len(docs)

    def _unlink(self, keys: Iterable[bytes]) -> None:
        batch: list[bytes] = []
        for key in keys:
            batch.append(key)
            if len(batch) >= 10_000:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)

    def clear(self) -> None:
        """Remove everything under this prefix (tests and re-installs)."""
        self._unlink(list(self._keys()))

    def get(self, household_key: str) -> dict[str, Any] | None:
        doc = self.client.get(self._key(household_key))
        return json.loads(doc) if doc else None

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        docs = self.client.mget([self._key(k) for k in keys])
        return [json.loads(d) if d else None for d in docs]

    def count(self) -> int:
        return sum(1 for _ in self._keys())

    def close(self) -> None:
        self.client.close()


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def open_online_store(settings: Any = None) -> SQLiteOnlineStore | RedisOnlineStore:
    """The configured online store: Redis when `online_store == "redis"`, else SQLite."""
    settings = settings or get_settings()
    if settings.online_store == "redis":
        return RedisOnlineStore(settings.redis_url)
    return SQLiteOnlineStore(settings.online_sqlite_path)


__all__ = ["OnlineStore", "RedisOnlineStore", "SQLiteOnlineStore",
           "latest_rows", "open_online_store", "to_documents"]
