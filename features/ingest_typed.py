"""Ingest step 3: typed conversion in SQL, judging every value by its text.

`create_typed` builds `typed_<t>` from `raw_<t>`: the contract's typed columns plus the first
conversion failure per row (`_reason` 'wrong_type' or 'invalid_date', `_col`, `_detail`).
"""

from __future__ import annotations

import contextlib

import duckdb

from safetynet.contracts import Column

from .reading import SourceFile

_TEXT_CHECKED = ("date", "int", "float", "bool")
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
_WANTED = {"date": "a date (YYYY-MM-DD)", "int": "a whole number", "float": "a number",
           "bool": "true or false"}


def quote(name: str) -> str:
    """A SQL identifier: `name` in double quotes (contract names need no escaping)."""
    return '"' + name + '"'


def typed_value(c: Column, x: str, sql_type: str) -> tuple[str, str | None]:
    """SQL for the typed value of contract column `c` from raw column `x` of DuckDB type
    `sql_type`, and for the raw value whose presence makes a NULL typed value a type failure
    (None: the kind has no type check).

    Every value is judged by its text: `CAST(x AS VARCHAR)`, trimmed, '' = missing. A Parquet
    column already of the contract's type gets a shortcut with the same result (a date outside
    years 1-9999 prints differently and fails the pattern; DOUBLE prints shortest-round-trip,
    non-finite values fail the number pattern; integers go through DOUBLE like text does).
    """
    native = {
        ("date", "DATE"): f"CASE WHEN {x} BETWEEN DATE '0001-01-01' AND DATE '9999-12-31' "
                          f"THEN {x} END",
        ("float", "DOUBLE"): f"CASE WHEN isfinite({x}) THEN {x} END",
        ("bool", "BOOLEAN"): x,
        **{("int", t): f"try_cast(CAST({x} AS DOUBLE) AS BIGINT)" for t in _INTEGERS},
    }.get((c.kind, sql_type))
    if native is not None:
        return native, x
    v = f"NULLIF({_trim(x if sql_type == 'VARCHAR' else f'CAST({x} AS VARCHAR)')}, '')"
    typed = {
        "date": f"CASE WHEN regexp_full_match({v}, '\\d{{4}}-\\d{{2}}-\\d{{2}}"
                f"( 00:00:00(\\.0+)?)?') THEN try_cast(left({v}, 10) AS DATE) END",
        "int": f"CASE WHEN regexp_full_match({v}, '[+-]?\\d+(\\.0*)?') THEN "
               f"try_cast(try_cast({v} AS DOUBLE) AS BIGINT) END",
        "float": f"CASE WHEN regexp_full_match({v}, '[+-]?(\\d+\\.?\\d*|\\.\\d+)"
                 f"([eE][+-]?\\d+)?') THEN try_cast({v} AS DOUBLE) END",
        "bool": f"CASE WHEN lower({v}) IN ('true', 't', '1', 'yes', 'y') THEN true "
                f"WHEN lower({v}) IN ('false', 'f', '0', 'no', 'n') THEN false END",
    }.get(c.kind, v)
    return typed, (v if c.kind in _TEXT_CHECKED else None)


def _trim(x: str) -> str:
    """`trim(x)`, skipped where it cannot change anything: DuckDB's trim removes Unicode space
    separators (Zs), and the only ASCII one is ' '. Copying every string costs more than the
    test, and most values are plain ASCII (figures: docs/ingest.md, Performance)."""
    return (f"CASE WHEN strlen({x}) = length({x}) AND NOT starts_with({x}, ' ') "
            f"AND NOT ends_with({x}, ' ') THEN {x} ELSE trim({x}) END")


def drop_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop view or table `name`, whichever it is (nothing when neither)."""
    for what in ("VIEW", "TABLE"):
        with contextlib.suppress(duckdb.CatalogException):
            con.execute(f"DROP {what} IF EXISTS {name}")


def create_typed(con: duckdb.DuckDBPyConnection, src: SourceFile) -> dict[str, str]:
    """typed_<t>: typed columns plus the first conversion failure (_reason, _col, _detail).

    Text values are checked by a cheap pattern first, so DuckDB's lenient casts (which
    accept '2024/1/5' as a date or '0x10' as a number) cannot let a wrong format through.
    Parquet columns of the contract's own type skip the detour through text (see
    `typed_value`). A view for Parquet: only the work_<t> table reads it; a table for CSV, as
    its raw table is one anyway (the raw table is then dropped).

    Returns, for a view, the SQL of the typed value of each text/ID column, so that ID columns
    can be read from the distinct raw values (`ingest_pseudonyms`); {} for a table.
    """
    t = src.table
    types = dict(con.execute(
        f"SELECT column_name, column_type FROM (DESCRIBE raw_{t.name})").fetchall())
    inner, outer, fails = [], [], []
    for c in t.columns:
        typed, raw = typed_value(c, quote(c.name), types[c.name])
        inner.append(f"{typed} AS {quote(c.name)}")
        outer.append(quote(c.name))
        if raw is not None:
            rq = quote("_raw_" + c.name)
            inner.append(f"{raw} AS {rq}")
            reason = "invalid_date" if c.kind == "date" else "wrong_type"
            shown = "" if c.personal else f"'||left(CAST({rq} AS VARCHAR), 40)||' "
            fails.append((f"{rq} IS NOT NULL AND {quote(c.name)} IS NULL", f"'{reason}'",
                          f"'{c.name}'", f"'value {shown}is not {_WANTED[c.kind]}'"))

    def case(i: int) -> str:
        if not fails:
            return "NULL::VARCHAR"
        return "CASE " + " ".join(f"WHEN {f[0]} THEN {f[i]}" for f in fails) + " END"

    kind = "TABLE" if src.format == "csv" else "VIEW"
    con.execute(
        f"CREATE OR REPLACE TEMP {kind} typed_{t.name} AS SELECT _line, "
        f"{case(1)} AS _reason, {case(2)} AS _col, {case(3)} AS _detail, "
        f"{', '.join(outer)} FROM (SELECT _line, {', '.join(inner)} FROM raw_{t.name})")
    if kind == "TABLE":
        for obj in (f"raw_{t.name}", f"raw_{t.name}_scan"):
            drop_relation(con, obj)
        return {}
    return {c.name: typed_value(c, quote(c.name), types[c.name])[0]
            for c in t.columns if c.kind in ("str", "id")}
