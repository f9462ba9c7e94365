"""Bulk inserts of DataFrames into service tables (driver-level batches: 1M rows in seconds).

SQLite gets one `executemany`; PostgreSQL gets `COPY … FROM STDIN`. Both run on the caller's
connection, so they belong to the caller's transaction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _column_values(s: pd.Series, col: sa.Column) -> list:
    """Python values the driver accepts for this column type (NaN/NA become NULL)."""
    missing = s.isna().to_numpy()
    if isinstance(col.type, sa.Date):
        iso = pd.to_datetime(s).dt.strftime("%Y-%m-%d")  # SQLAlchemy's SQLite date format
        out = iso.to_numpy(dtype=object)
    elif isinstance(col.type, sa.Boolean):
        out = s.fillna(False).to_numpy(dtype=bool).astype(object)
    elif isinstance(col.type, sa.Float):
        out = s.to_numpy(dtype=float, na_value=np.nan).astype(object)
    elif isinstance(col.type, sa.Integer):
        out = s.fillna(0).to_numpy(dtype=np.int64).astype(object)
    else:
        out = s.to_numpy(dtype=object)
    if missing.any():
        out = out.copy()
        out[missing] = None
    return out.tolist()


def bulk_insert(conn: Connection, table: sa.Table, df: pd.DataFrame) -> int:
    """Insert every row of `df` (columns named as the table's) in the caller's transaction."""
    if df.empty:
        return 0
    cols = [c for c in table.columns if c.name in df.columns]
    columns = [_column_values(df[c.name], c) for c in cols]
    rows = list(zip(*columns, strict=True))
    names = ", ".join(f'"{c.name}"' for c in cols)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as cp:
            for row in rows:
                cp.write_row(row)
    else:
        marks = ", ".join("?" for _ in cols)
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', rows)
    return len(rows)

