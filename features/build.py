"""Offline feature build: every household at many as-of dates in one DuckDB query (run per
hash bucket of households, so memory follows the bucket, not the city)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from safetynet.config import get_settings
from safetynet.contracts import TABLES

from .compile import AS_OF, feature_sql, used_tables
from .definitions import FEATURES_BY_NAME
from .store import OfflineStore, stored_columns, stored_key


def parse_dates(text: str) -> list[date]:
    """'2024-06-30,2024-07-31' -> dates, with a clear error for a bad one."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            out.append(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {part!r}") from None
    if not out:
        raise ValueError("no as-of date given")
    return sorted(set(out))


def _sql(con: duckdb.DuckDBPyConnection) -> str:
    single = frozenset(r[0] for r in con.execute("SELECT name FROM _single_version").fetchall())
    return feature_sql("duckdb", single)


def _set_dates(con: duckdb.DuckDBPyConnection, as_of: Sequence[date]) -> None:
    frame = pd.DataFrame({"as_of_date": pd.to_datetime(list(as_of)).date})  # noqa: F841
    con.execute(f"CREATE OR REPLACE TEMP TABLE {AS_OF} AS "
                "SELECT CAST(as_of_date AS DATE) AS as_of_date FROM frame")


def build_features(as_of: Sequence[date], store_dir: Path | None = None, *,
                   con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Features of every household at every date in `as_of` (sorted by as_of_date, key), from
    `con` (an `OfflineStore.connect_versions()` connection) or the store at `store_dir`
    (default: the `store_dir` setting)."""
    con = con or OfflineStore(root=store_dir).connect_versions()
    _set_dates(con, as_of)
    frame = con.execute(_sql(con) + "\nORDER BY as_of_date, household_key").df()
    return normalize_dtypes(frame)


def normalize_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable pandas dtypes whatever the data: counts and flags int64, features that may be
    missing float64 (NaN), dates datetime64 (NaT), strings object."""
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    for col in frame.columns:
        f = FEATURES_BY_NAME.get(col)
        if f is None:
            continue
        if f.dtype == "date":
            frame[col] = pd.to_datetime(frame[col])
        elif f.dtype == "float" or (f.dtype in ("int", "flag") and f.missing.rule == "null"):
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
        elif f.dtype in ("int", "flag"):
            frame[col] = frame[col].astype("int64")
    return frame


ROW_GROUP = 122_880  # rows per Parquet row group (DuckDB's own default)


def write_features(as_of: Sequence[date], out: Path, store_dir: Path | None = None, *,
                   con: duckdb.DuckDBPyConnection | None = None,
                   buckets: int | None = None) -> int:
    """Stream the build straight to Parquet (no pandas copy); atomic via a temporary file.

    Households are split into `buckets` hash buckets (default: one per
    `features_bucket_households` registered households) and the same set-based query runs
    once per bucket over that bucket's households, their members and those members'
    records; each bucket's rows stream into the one output file. Memory is bounded by the
    bucket, not the city, and the rows are the same as one query's.
    Returns the number of rows written.
    """
    con = con or OfflineStore(root=store_dir).connect_versions()
    _set_dates(con, as_of)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    n = buckets or bucket_count(con)
    sql = _sql(con)
    rows, writer = 0, None
    try:
        with _bucket_views(con, n) as select_bucket:
            for b in range(n):
                select_bucket(b)
                rel = con.sql(sql)
                reader = (rel.to_arrow_reader(ROW_GROUP) if hasattr(rel, "to_arrow_reader")
                          else rel.fetch_arrow_reader(ROW_GROUP))  # older duckdb
                if writer is None:
                    writer = pq.ParquetWriter(tmp, reader.schema, compression="zstd")
                for batch in reader:
                    writer.write_batch(batch, row_group_size=ROW_GROUP)
                    rows += batch.num_rows
        assert writer is not None
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return rows


def bucket_count(con: duckdb.DuckDBPyConnection, per_bucket: int | None = None) -> int:
    """Hash buckets for a build: one per `per_bucket` households in the store (default:
    the `features_bucket_households` setting)."""
    if per_bucket is None:
        per_bucket = get_settings().features_bucket_households
    households = con.execute("SELECT COUNT(DISTINCT household_key) FROM households"
                             ).fetchall()[0][0]
    return max(1, math.ceil(households / max(1, per_bucket)))


@contextmanager
def _bucket_views(con: duckdb.DuckDBPyConnection, n: int) -> Iterator[Callable[[int], None]]:
    """Point the store views at one hash bucket of households at a time.

    Yields `select(b)`. Bucket b holds the households with hash(household_key) % n = b, every
    person who ever belonged to one of them (in any version) and every version of every
    record linked to such a person (or household). A record whose primary key does not
    include the person is kept whole when any of its versions links into the bucket, so the
    version window (`_valid_to`) sees the same versions as in a one-query build. The
    original views are restored on exit."""
    if n == 1:
        yield lambda b: None
        return
    single = frozenset(r[0] for r in con.execute("SELECT name FROM _single_version").fetchall())
    tables = [t for t in TABLES if t.name in (*used_tables(), "households", "persons")]
    for t in tables:
        con.execute(f"ALTER VIEW {t.name} RENAME TO _store_{t.name}")
    try:
        for link in ("household_key", "person_key"):
            con.execute(f"CREATE OR REPLACE TEMP TABLE _bucket_{link} ({link} VARCHAR)")
        for t in tables:
            cols = {c for c, _ in stored_columns(t)}
            link = "person_key" if "person_key" in cols else "household_key"
            keep = f"{link} IN (SELECT {link} FROM _bucket_{link})"
            key = stored_key(t)
            if t.name in single or link in key:
                view = f"SELECT * FROM _store_{t.name} WHERE {keep}"
            else:
                cols_key = ", ".join(key)
                view = (f"SELECT s.* FROM _store_{t.name} s SEMI JOIN (SELECT DISTINCT "
                        f"{cols_key} FROM _store_{t.name} WHERE {keep}) k USING ({cols_key})")
            con.execute(f"CREATE VIEW {t.name} AS {view}")

        def select(b: int) -> None:
            in_bucket = f"hash(household_key) % {int(n)} = {int(b)}"
            con.execute("CREATE OR REPLACE TEMP TABLE _bucket_household_key AS SELECT "
                        f"DISTINCT household_key FROM _store_households WHERE {in_bucket}")
            con.execute("CREATE OR REPLACE TEMP TABLE _bucket_person_key AS SELECT "
                        f"DISTINCT person_key FROM _store_persons WHERE {in_bucket}")

        yield select
    finally:
        for t in tables:
            con.execute(f"DROP VIEW IF EXISTS {t.name}")
            con.execute(f"ALTER VIEW _store_{t.name} RENAME TO {t.name}")
        con.execute("DROP TABLE IF EXISTS _bucket_household_key")
        con.execute("DROP TABLE IF EXISTS _bucket_person_key")
