"""Ingest step 5a: distinct resident IDs and household numbers -> pseudonymous keys.

The mapping tables `idmap` (raw, person_key, reason, detail, legacy) and `hhmap` (raw,
household_key) are built by `features.linkage` with the deployment's secret; no other step
sees a raw ID after they are joined.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from .ingest_typed import quote
from .linkage import household_map, id_map
from .reading import SourceFile

_MAPS = (("idmap", "resident_id", id_map, "person_column"),
         ("hhmap", "household_id", household_map, "household_column"))


def create_id_maps(con: duckdb.DuckDBPyConnection, files: list[SourceFile],
                   id_exprs: dict[str, dict[str, str]], secret: bytes) -> None:
    """Temp tables `idmap` and `hhmap` over the distinct IDs of every file.

    Taken over every row (also rows that fail a check): a superset of the IDs that reach
    the rules, and a scan of one column instead of the whole typed table. `id_exprs`: per
    table whose typed_<t> is a view, the SQL of its typed ID columns (`create_typed`)."""
    for table, col, make, kind in _MAPS:
        parts = [_distinct(s.table.name, col, id_exprs.get(s.table.name, {}))
                 for s in files if getattr(s.table, kind)]
        raw = (con.execute(f"SELECT raw FROM ({' UNION '.join(parts)}) "
                           "WHERE raw IS NOT NULL").df()["raw"] if parts
               else pd.Series([], dtype="string"))
        con.register(f"{table}_df", make(raw, secret))
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM {table}_df")
        con.unregister(f"{table}_df")


def _distinct(name: str, col: str, exprs: dict[str, str]) -> str:
    """SQL for the distinct typed values of ID column `col` of table `name`."""
    expr = exprs.get(col)
    if expr is None:
        return f"SELECT {quote(col)} AS raw FROM typed_{name}"
    # distinct raw values first: the typed value (trimmed) is then computed once each
    return f"SELECT {expr} AS raw FROM (SELECT DISTINCT {quote(col)} FROM raw_{name})"
