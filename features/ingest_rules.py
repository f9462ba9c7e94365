"""Ingest step 5b: link to the registries and apply the rules pandera cannot express.

`apply_rules` builds work_<t>: every typed row with its pseudonyms, the household from the
registry, and its first failure in `_r` (NULL = accepted), `_c` (column) and `_d` (detail), in
this order: the type stage's, pandera's (`ingest_contract`), the resident ID's ('missing_id',
'malformed_id', 'invalid_id_check'), 'future_date', 'knowledge_before_event',
'unknown_household', 'unknown_person'; then 'duplicate' among the rows that passed.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from safetynet.contracts import Table

from .ingest_contract import flag_contract_failures
from .ingest_typed import drop_relation, quote

# order matters: the registries are checked before the tables that link to them
REGISTRY_FIRST = ("households", "persons")


def apply_rules(con: duckdb.DuckDBPyConnection, t: Table, delivery_date: dt.date
                ) -> dict[str, int] | None:
    """work_<t> (see the module docstring); frees typed_<t>. Returns, for a table that links
    persons to the registry, its distinct persons and how many the registry has
    (`count_persons`); else None."""
    name = t.name
    links_person = bool(t.person_column) and name != "persons"
    links_household = bool(t.household_column) and name != "households"
    joins, extra = _joins(con, t, links_person, links_household)
    rules = _rules(t, delivery_date, links_person, links_household)

    def case(i: int) -> str:
        return "CASE " + " ".join(f"WHEN {r[0]} THEN {r[i]}" for r in rules) + " END"

    only_rules = ["_col", "_detail", "_idr", "_idd"] + (["_hknown"] if links_household else [])
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE work_{name} AS SELECT * EXCLUDE "
        f"({', '.join(only_rules)}), {case(1)} AS _r, {case(2)} AS _c, {case(3)} AS _d "
        f"FROM (SELECT x.*{''.join(', ' + e for e in extra)} FROM typed_{name} x "
        f"{' '.join(joins)})")
    drop_relation(con, f"typed_{name}")
    flag_contract_failures(con, t)
    _duplicates(con, t)
    _extend_registry(con, name)
    if not links_person:
        return None
    # persons with a valid ID, and whether the registry has them
    con.execute(f"CREATE TEMP TABLE keys_{name} AS SELECT DISTINCT person_key, "
                f"_known AS matched FROM work_{name} WHERE _r IS NULL "
                "OR _r IN ('unknown_person', 'duplicate')")
    return count_persons(con, [name])


def _joins(con: duckdb.DuckDBPyConnection, t: Table, links_person: bool,
           links_household: bool) -> tuple[list[str], list[str]]:
    """The joins to the ID maps (or linked registries) and the columns they add."""
    joins, extra = [], []
    if t.person_column:
        if links_person:
            _linked(con, "idreg")
        joins.append(f"LEFT JOIN {'idreg' if links_person else 'idmap'} i "
                     "ON i.raw = x.resident_id")
        extra += ["i.person_key", "i.reason AS _idr", "i.detail AS _idd",
                  "coalesce(i.legacy, false) AS _legacy"]
        if links_person:
            extra += ["i.household_key", "coalesce(i.known, false) AS _known"]
    else:
        extra += ["NULL::VARCHAR AS _idr", "NULL::VARCHAR AS _idd"]
    if t.household_column:
        if links_household:
            _linked(con, "hhreg")
        joins.append(f"LEFT JOIN {'hhreg' if links_household else 'hhmap'} h "
                     "ON h.raw = x.household_id")
        extra.append("h.household_key")
        if links_household:
            extra.append("coalesce(h.known, false) AS _hknown")
    return joins, extra


def _rules(t: Table, delivery_date: dt.date, links_person: bool, links_household: bool
           ) -> list[tuple[str, str, str, str]]:
    """(condition, reason, column, detail) SQL of each rule, first one found wins."""
    day = f"DATE '{delivery_date.isoformat()}'"
    ev, kd = quote(t.event_date), quote(t.knowledge_date)
    rules = [
        ("_reason IS NOT NULL", "_reason", "_col", "_detail"),
        ("_idr IS NOT NULL", "_idr", f"'{t.person_column}'", "_idd"),
        (f"{ev} > {day}", "'future_date'", f"'{t.event_date}'",
         f"'value '||{ev}||' is after the delivery date {day[6:-1]}'"),
        (f"{kd} > {day}", "'future_date'", f"'{t.knowledge_date}'",
         f"'value '||{kd}||' is after the delivery date {day[6:-1]}'"),
        (f"{kd} < {ev}", "'knowledge_before_event'", f"'{t.knowledge_date}'",
         f"'known '||{kd}||' before the event date '||{ev}"),
    ]
    if links_household:
        rules.append(("NOT _hknown", "'unknown_household'", f"'{t.household_column}'",
                      "'household registry number not in the household registry'"))
    if links_person:
        rules.append(("NOT _known", "'unknown_person'", f"'{t.person_column}'",
                      "'resident ID not in the person registry'"))
    return rules


def _linked(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """`idreg` / `hhreg`: the ID maps joined once to the person / household registry, so
    each table needs one join per ID instead of two. Built when first needed: after the
    registry tables of this delivery are final (they are linked first)."""
    if name in _tables(con):
        return
    if name == "idreg":
        _registry(con, "reg_persons", "SELECT person_key, household_key FROM committed_persons")
        con.execute(
            "CREATE TEMP TABLE idreg AS SELECT i.*, r.household_key, "
            "r.person_key IS NOT NULL AS known FROM idmap i "
            "LEFT JOIN reg_persons r ON r.person_key = i.person_key")
    else:
        _registry(con, "reg_households", "SELECT household_key FROM committed_households")
        con.execute(
            "CREATE TEMP TABLE hhreg AS SELECT h.*, g.household_key IS NOT NULL AS known "
            "FROM hhmap h LEFT JOIN reg_households g ON g.household_key = h.household_key")


def _registry(con: duckdb.DuckDBPyConnection, name: str, committed: str) -> None:
    """Fall back to the committed registry when this delivery does not carry it."""
    if name not in _tables(con):
        con.execute(f"CREATE TEMP TABLE {name} AS {committed}")


def _extend_registry(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """After a registry table: its accepted rows join the committed ones (the newest
    knowledge per person wins) for the tables that link to it."""
    if name == "households":
        con.execute("CREATE TEMP TABLE reg_households AS SELECT household_key FROM "
                    "work_households WHERE _r IS NULL UNION SELECT household_key "
                    "FROM committed_households")
    if name == "persons":
        con.execute(
            "CREATE TEMP TABLE reg_persons AS SELECT person_key, household_key FROM "
            "(SELECT person_key, household_key, knowledge_date, 1 AS fresh "
            "FROM work_persons WHERE _r IS NULL UNION ALL SELECT person_key, household_key, "
            "knowledge_date, 0 FROM committed_persons) QUALIFY row_number() OVER "
            "(PARTITION BY person_key ORDER BY knowledge_date DESC, fresh DESC) = 1")


def _duplicates(con: duckdb.DuckDBPyConnection, t: Table) -> None:
    """Keep the first row per primary key; later ones are exact or key duplicates."""
    key = ", ".join(quote("person_key" if c == t.person_column else c) for c in t.primary_key)
    values = [quote(c.name) for c in t.columns if c.name != t.person_column]
    if t.person_column:
        values.append("person_key")
    row = "hash(" + ", ".join(values) + ")"
    name = t.name
    # keys that repeat are rare: find them by aggregation (on a 64-bit hash of the key,
    # much cheaper than on the key; a collision only adds a candidate), rank only their
    # rows by the key itself
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE dup AS SELECT _line AS dl, first_line, "
        f"row_hash = first_hash AS exact FROM (SELECT _line, {row} AS row_hash, "
        f"first_value(_line) OVER w AS first_line, first_value({row}) OVER w AS first_hash,"
        f" row_number() OVER w AS rn FROM work_{name} WHERE _r IS NULL AND hash({key}) IN "
        f"(SELECT hash({key}) FROM work_{name} WHERE _r IS NULL GROUP BY 1 "
        f"HAVING count(*) > 1) WINDOW w AS (PARTITION BY {key} ORDER BY _line)) "
        f"WHERE rn > 1")
    if con.execute("SELECT count(*) FROM dup").fetchall()[0][0]:
        con.execute(
            f"UPDATE work_{name} SET _r = 'duplicate', _c = '{', '.join(t.primary_key)}', "
            "_d = CASE WHEN exact THEN 'exact duplicate of line ' ELSE "
            "'primary key repeats line ' END || first_line FROM dup WHERE _line = dl")


def count_persons(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, int]:
    """Distinct persons in these tables (`keys_<t>`) and how many the person registry has:
    {"distinct_persons", "matched_persons"}."""
    union = " UNION ALL ".join(f"SELECT * FROM keys_{n}" for n in names)
    persons, matched = con.execute(
        f"SELECT count(DISTINCT person_key), count(DISTINCT person_key) FILTER "
        f"(WHERE matched) FROM ({union})").fetchall()[0]
    return {"distinct_persons": int(persons), "matched_persons": int(matched)}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
