"""Ingest step 6: accepted rows, the reject ledger and report.json into the staging directory.

The staging directory is renamed into place by `features.ingest.ingest` (the commit).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from safetynet.contracts import Table

from .ingest_rules import REGISTRY_FIRST, count_persons
from .ingest_typed import quote
from .reading import SourceFile
from .store import stored_columns

LEDGER_COLUMNS = ["delivery_id", "department", "file", "line", "reason", "column", "detail"]
LEDGER_DDL = ("CREATE TEMP TABLE ledger (tbl VARCHAR, line BIGINT, reason VARCHAR, "
              "\"column\" VARCHAR, detail VARCHAR)")


def write_table(con: duckdb.DuckDBPyConnection, t: Table, tables_dir: Path,
                delivery_id: str) -> tuple[int, int]:
    """Rejected rows of work_<t> into the ledger, accepted rows to `<t>.parquet`; frees
    work_<t> (but for the registries, which the identity upsert reads). Returns (accepted
    rows, legacy 15-digit IDs converted among them)."""
    con.execute(f"INSERT INTO ledger SELECT '{t.name}', _line, _r, _c, _d "
                f"FROM work_{t.name} WHERE _r IS NOT NULL")
    sel = ", ".join(
        f"'{delivery_id}' AS _delivery_id" if c == "_delivery_id"
        else "_line AS _source_line" if c == "_source_line" else quote(c)
        for c, _ in stored_columns(t))
    legacy = "count(*) FILTER (WHERE _legacy)" if t.person_column else "0"
    accepted, converted = con.execute(
        f"SELECT count(*), {legacy} FROM work_{t.name} WHERE _r IS NULL").fetchall()[0]
    # zstd level 1: the choice and its figures in docs/ingest.md, Performance
    con.execute(f"COPY (SELECT {sel} FROM work_{t.name} WHERE _r IS NULL) TO "
                f"'{tables_dir / (t.name + '.parquet')}' "
                "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)")
    if t.name not in REGISTRY_FIRST:  # the identity upsert reads only those
        con.execute(f"DROP TABLE work_{t.name}")
    return int(accepted), int(converted)


def write_ledger(con: duckdb.DuckDBPyConnection, files: list[SourceFile], delivery_id: str,
                 staging: Path) -> pd.DataFrame:
    """`rejects.parquet` (LEDGER_COLUMNS, by file and line) into `staging`; returns the
    ledger table as read (tbl, line, reason, column, detail)."""
    by_name = {s.table.name: s for s in files}
    ledger = con.execute("SELECT * FROM ledger ORDER BY tbl, line").df()
    out = pd.DataFrame({
        "delivery_id": delivery_id,
        "department": ledger["tbl"].map(lambda n: by_name[n].table.department),
        "file": ledger["tbl"].map(lambda n: by_name[n].relpath),
        "line": ledger["line"].astype("int64"),
        "reason": ledger["reason"], "column": ledger["column"], "detail": ledger["detail"],
    }, columns=LEDGER_COLUMNS)
    out.astype({c: "string" for c in LEDGER_COLUMNS if c != "line"}).to_parquet(
        staging / "rejects.parquet", index=False)
    return ledger


def build_report(con: duckdb.DuckDBPyConnection, files: list[SourceFile], ledger: pd.DataFrame,
                 counts: dict[str, dict], delivery_id: str, delivery_date: dt.date) -> dict:
    """report.json's content: per table and per department rows read, accepted, rejected
    (by reason), legacy IDs converted, persons matched to the registry (docs/ingest.md).

    `counts[table]`: rows_read, accepted, legacy and linkage (`apply_rules`'s result)."""
    by_reason = ledger.groupby(["tbl", "reason"]).size()
    tables = []
    for src in files:
        name = src.table.name
        c = counts[name]
        reasons = {r: int(n) for (tb, r), n in by_reason.items() if tb == name}
        link = c.get("linkage") or {}
        tables.append({
            "table": name, "department": src.table.department, "file": src.relpath,
            "format": src.format, "encoding": src.encoding, "sha256": src.sha256,
            "rows_read": int(c["rows_read"]), "accepted": int(c["accepted"]),
            "rejected": int(sum(reasons.values())), "rejected_by_reason": reasons,
            "legacy_ids_converted": int(c.get("legacy", 0)),
            "unmatched": reasons.get("unknown_person", 0),
            **{k: int(v) for k, v in link.items()},
            "match_rate": _rate(link),
        })
    departments = []
    for dept in dict.fromkeys(t["department"] for t in tables):
        rows = [t for t in tables if t["department"] == dept]
        keyed = [t["table"] for t in rows if counts[t["table"]].get("linkage") is not None]
        persons = count_persons(con, keyed) if keyed else {}
        departments.append({
            "department": dept,
            **{k: sum(t[k] for t in rows) for k in ("rows_read", "accepted", "rejected",
                                                    "legacy_ids_converted", "unmatched")},
            **persons, "match_rate": _rate(persons),
        })
    return {
        "delivery_id": delivery_id,
        "delivery_date": delivery_date.isoformat(),
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tables": tables, "departments": departments,
    }


def _rate(d: dict) -> float | None:
    n = d.get("distinct_persons")
    return round(d["matched_persons"] / n, 4) if n else None
