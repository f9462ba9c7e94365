"""Reading the offline store: committed deliveries as DuckDB views.

Layout (docs/architecture.md, "The offline store"):
`store/deliveries/<delivery_id>/tables/<table>.parquet`, `rejects.parquet`, `report.json`.
A table is the union of its Parquet files over all committed deliveries; where a primary key
repeats, the row with the latest `knowledge_date` wins (ties: the later-committed delivery,
then the later source line). Primary keys use pseudonyms: `resident_id` becomes `person_key`
and `household_id` becomes `household_key`.

    store = OfflineStore(get_settings())
    con = store.connect()                      # one view per contract table
    con.sql("SELECT count(*) FROM claims")
    store.table("claims")                      # the SQL behind that view
    con = store.connect_versions()             # every stored version, for point-in-time builds

Every DuckDB connection on the store is opened here (`_open`), spilling under
`$SAFETYNET_HOME/tmp/duckdb`. Stages reach the store through
`safetynet.features.feature_store.FeatureStore`.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from safetynet.config import Settings, get_settings
from safetynet.contracts import TABLES, Table, table

PSEUDONYM_OF = {"resident_id": "person_key", "household_id": "household_key"}
SQL_TYPES = {"str": "VARCHAR", "id": "VARCHAR", "category": "VARCHAR", "date": "DATE",
             "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN"}


def stored_columns(t: Table) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a table as stored: pseudonyms, no personal columns, lineage."""
    out: list[tuple[str, str]] = []
    for c in t.columns:
        if c.name in PSEUDONYM_OF:
            out.append((PSEUDONYM_OF[c.name], "VARCHAR"))
            if c.name == t.person_column and t.household_column is None:
                out.append(("household_key", "VARCHAR"))
        elif not c.personal:
            out.append((c.name, SQL_TYPES[c.kind]))
    return [*out, ("_delivery_id", "VARCHAR"), ("_source_line", "BIGINT")]


def stored_key(t: Table) -> list[str]:
    """The table's primary key in stored (pseudonymized) column names."""
    return [PSEUDONYM_OF.get(c, c) for c in t.primary_key]


class OfflineStore:
    """Read access to the committed deliveries under `settings.store_dir`."""

    def __init__(self, settings: Settings | None = None, root: Path | None = None):
        self.settings = settings or get_settings()
        self.root = Path(root) if root else self.settings.store_dir

    @property
    def deliveries_dir(self) -> Path:
        return self.root / "deliveries"

    def deliveries(self) -> list[dict]:
        """Committed deliveries, oldest first: {'delivery_id', 'ingested_at', 'path', ...}."""
        out = []
        if not self.deliveries_dir.is_dir():
            return out
        for d in self.deliveries_dir.iterdir():
            report = d / "report.json"
            if d.is_dir() and report.exists():
                doc = json.loads(report.read_text(encoding="utf-8"))
                out.append({"delivery_id": d.name, "ingested_at": doc.get("ingested_at", ""),
                            "delivery_date": doc.get("delivery_date"), "path": d})
        return sorted(out, key=lambda r: (r["ingested_at"], r["delivery_id"]))

    def files(self, name: str) -> list[Path]:
        """The Parquet files of table `name`, in commit order."""
        return [p for d in self.deliveries()
                if (p := d["path"] / "tables" / f"{name}.parquet").exists()]

    def table(self, name: str) -> str:
        """A DuckDB SELECT over table `name` as of now (latest knowledge wins per key)."""
        t = table(name)
        files = self.files(name)
        cols = stored_columns(t)
        if not files:  # typed and empty, so queries against it still bind
            return ("SELECT " + ", ".join(f"CAST(NULL AS {ty}) AS {c}" for c, ty in cols)
                    + " WHERE false")
        names = ", ".join(c for c, _ in cols)
        src = ("read_parquet([" + ", ".join(_quote(p) for p in files)
               + "], union_by_name=true)")
        if len(files) == 1:  # keys are unique within a delivery (ingest rejects duplicates)
            return f"SELECT {names} FROM {src}"
        order = {d["delivery_id"]: i for i, d in enumerate(self.deliveries())}
        rank = "CASE _delivery_id " + " ".join(
            f"WHEN '{k}' THEN {i}" for k, i in order.items()) + " END"
        key = ", ".join(stored_key(t))
        return (f"SELECT {names} FROM {src} QUALIFY row_number() OVER (PARTITION BY {key} "
                f"ORDER BY knowledge_date DESC, {rank} DESC, _source_line DESC) = 1")

    def rejects(self) -> str:
        """A DuckDB SELECT over the reject ledgers of all committed deliveries."""
        files = [p for d in self.deliveries() if (p := d["path"] / "rejects.parquet").exists()]
        if not files:
            return ("SELECT NULL::VARCHAR AS delivery_id, NULL::VARCHAR AS department, "
                    "NULL::VARCHAR AS file, NULL::BIGINT AS line, NULL::VARCHAR AS reason, "
                    "NULL::VARCHAR AS \"column\", NULL::VARCHAR AS detail WHERE false")
        return "SELECT * FROM read_parquet([" + ", ".join(_quote(p) for p in files) + "])"

    def create_views(self, con: duckdb.DuckDBPyConnection, prefix: str = "") -> None:
        """Create one view per contract table (named `prefix + table`) and `rejects`."""
        for t in TABLES:
            con.execute(f"CREATE OR REPLACE VIEW {prefix}{t.name} AS {self.table(t.name)}")
        con.execute(f"CREATE OR REPLACE VIEW {prefix}rejects AS {self.rejects()}")

    def create_version_views(self, con: duckdb.DuckDBPyConnection) -> frozenset[str]:
        """Create one all-versions view per contract table, as the feature query expects.

        Each view holds every stored version of every record (the union over committed
        deliveries, NOT deduplicated: `table` keeps only the version known today, which would
        leak later corrections into features at past as-of dates; the feature query picks the
        version known at each as-of date itself) plus `_commit_rank` (delivery commit order),
        which breaks knowledge-date ties as `table` does. Returns the tables holding at most
        one version per key (at most one delivery brought them, and ingest rejects duplicate
        keys within a delivery)."""
        single = set()
        order = {d["delivery_id"]: i for i, d in enumerate(self.deliveries())}
        rank = ("CASE _delivery_id " + " ".join(f"WHEN {_quote(k)} THEN {i}"
                                                for k, i in order.items()) + " END"
                if order else "0")
        for t in TABLES:
            cols = stored_columns(t)
            files = self.files(t.name)
            if len(files) <= 1:
                single.add(t.name)
            if files:
                # Cast to the store types so a delivery with an all-NULL column still unions.
                select = ", ".join(f"CAST({n} AS {ty}) AS {n}" for n, ty in cols)
                src = ("read_parquet([" + ", ".join(_quote(p) for p in files)
                       + "], union_by_name=true)")
                con.execute(f"CREATE OR REPLACE VIEW {t.name} AS SELECT {select}, "
                            f"{rank} AS _commit_rank FROM {src}")
            else:
                select = ", ".join(f"CAST(NULL AS {ty}) AS {n}" for n, ty in cols)
                con.execute(f"CREATE OR REPLACE VIEW {t.name} AS SELECT {select}, "
                            "CAST(NULL AS INTEGER) AS _commit_rank WHERE 1 = 0")
        return frozenset(single)

    def _open(self, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
        spill = self.settings.home / "tmp" / "duckdb"  # not ./.tmp: all state under home
        spill.parent.mkdir(parents=True, exist_ok=True)  # DuckDB creates only the last level
        return duckdb.connect(database, config={"temp_directory": str(spill)})

    def connect(self, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per contract table (see `create_views`)."""
        con = self._open(database)
        self.create_views(con)
        return con

    def connect_versions(self, *, threads: int | None = None,
                         memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection for point-in-time feature builds: the all-versions
        views of `create_version_views` and, in table `_single_version`, the tables holding
        one version per key. `memory_limit` defaults to the `features_memory_limit` setting,
        `threads` to all cores."""
        con = self._open()
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = false")  # results are keyed, order is free
        # The feature query writes the smaller side of every join on the right, where DuckDB
        # builds its hash table. DuckDB's own choice trusts its estimate for `members`
        # (persons x as-of dates on an inequality), which is far too low, and then builds a
        # hash table of every member at every date once per person-level source: 2x the
        # memory, 1.4x the time (100k households).
        con.execute("SET disabled_optimizers = 'build_side_probe_side'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        memory_limit = memory_limit or self.settings.features_memory_limit
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        single = self.create_version_views(con)
        con.execute("CREATE OR REPLACE TEMP TABLE _single_version AS "
                    "SELECT unnest(CAST(? AS VARCHAR[])) AS name", [sorted(single)])
        return con


def _quote(p: Path | str) -> str:
    return "'" + str(p).replace("'", "''") + "'"
