"""DuckDB views over the offline store, as the feature query expects them.

One view per contract table, named like the table, holding every stored version of every
record: the union over committed deliveries, NOT deduplicated. `OfflineStore.table` keeps
only the latest version known today, which is right for browsing but would leak later
corrections into features at past as-of dates; the feature query picks the version known at
each as-of date itself. `_commit_rank` (delivery commit order) breaks knowledge-date ties the
same way `OfflineStore` does.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from safetynet.contracts import TABLES

from .store import OfflineStore, stored_columns


def _quote(p: Path | str) -> str:
    return "'" + str(p).replace("'", "''") + "'"


def register_store_views(con: duckdb.DuckDBPyConnection, store_dir: Path) -> frozenset[str]:
    """Create one all-versions view per contract table over `store_dir`'s deliveries.

    Returns the tables that hold at most one version per key (at most one delivery brought
    them, and ingest rejects duplicate keys within a delivery)."""
    single = set()
    store = OfflineStore(root=Path(store_dir))
    order = {d["delivery_id"]: i for i, d in enumerate(store.deliveries())}
    rank = ("CASE _delivery_id " + " ".join(f"WHEN {_quote(k)} THEN {i}" for k, i in order.items())
            + " END") if order else "0"
    for t in TABLES:
        cols = stored_columns(t)
        files = store.files(t.name)
        if len(files) <= 1:
            single.add(t.name)
        if files:
            # Cast to the store types so a delivery with an all-NULL column still unions.
            select = ", ".join(f"CAST({n} AS {ty}) AS {n}" for n, ty in cols)
            src = "read_parquet([" + ", ".join(_quote(p) for p in files) + "], union_by_name=true)"
            con.execute(f"CREATE OR REPLACE VIEW {t.name} AS SELECT {select}, "
                        f"{rank} AS _commit_rank FROM {src}")
        else:
            select = ", ".join(f"CAST(NULL AS {ty}) AS {n}" for n, ty in cols)
            con.execute(f"CREATE OR REPLACE VIEW {t.name} AS SELECT {select}, "
                        "CAST(NULL AS INTEGER) AS _commit_rank WHERE 1 = 0")
    return frozenset(single)
