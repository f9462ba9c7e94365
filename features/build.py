"""Offline feature build: every household at many as-of dates in one DuckDB query."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from .compile import AS_OF, feature_sql


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


def connect(store_dir: Path, *, threads: int | None = None,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the store's tables as views (and, in table
    `_single_version`, the tables holding one version per key)."""
    from safetynet.config import get_settings

    from .views import register_store_views

    # DuckDB spills to ./.tmp by default; keep every byte under $SAFETYNET_HOME instead
    spill = get_settings().home / "tmp" / "duckdb"
    con = duckdb.connect(config={"temp_directory": str(spill)})
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    single = register_store_views(con, store_dir)
    con.execute("CREATE OR REPLACE TEMP TABLE _single_version AS "
                "SELECT unnest(CAST(? AS VARCHAR[])) AS name", [sorted(single)])
    return con


def _sql(con: duckdb.DuckDBPyConnection) -> str:
    single = frozenset(r[0] for r in con.execute("SELECT name FROM _single_version").fetchall())
    return feature_sql("duckdb", single)


def _set_dates(con: duckdb.DuckDBPyConnection, as_of: Sequence[date]) -> None:
    frame = pd.DataFrame({"as_of_date": pd.to_datetime(list(as_of)).date})  # noqa: F841
    con.execute(f"CREATE OR REPLACE TEMP TABLE {AS_OF} AS "
                "SELECT CAST(as_of_date AS DATE) AS as_of_date FROM frame")


def build_features(as_of: Sequence[date], store_dir: Path | None = None, *,
                   con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Features of every household at every date in `as_of` (sorted by as_of_date, key)."""
    con = con or connect(_default_store(store_dir))
    _set_dates(con, as_of)
    frame = con.execute(_sql(con) + "\nORDER BY as_of_date, household_key").df()
    return normalize_dtypes(frame)


def normalize_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable pandas dtypes whatever the data: counts and flags int64, features that may be
    missing float64 (NaN), dates datetime64 (NaT), strings object."""
    from .definitions import FEATURES_BY_NAME

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


def write_features(as_of: Sequence[date], out: Path, store_dir: Path | None = None, *,
                   con: duckdb.DuckDBPyConnection | None = None) -> int:
    """Stream the build straight to Parquet (no pandas copy); atomic via a temporary file.

    Returns the number of rows written.
    """
    con = con or connect(_default_store(store_dir))
    _set_dates(con, as_of)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    path = str(tmp).replace("'", "''")
    try:
        con.execute(f"COPY ({_sql(con)}) TO '{path}' (FORMAT parquet, "
                    "COMPRESSION zstd)")
        rows = con.execute(f"SELECT COUNT(*) FROM read_parquet('{path}')").fetchall()[0][0]
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return int(rows)


def _default_store(store_dir: Path | None) -> Path:
    if store_dir is not None:
        return Path(store_dir)
    from safetynet.config import get_settings

    return get_settings().store_dir
