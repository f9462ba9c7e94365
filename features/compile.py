"""Compile the declarative feature definitions into one set-based SQL query.

The query reads relations named like the contract tables (one row per stored version of a
record with its `_commit_rank`, see `OfflineStore.create_version_views`) and
`as_of_dates(as_of_date DATE)`, and returns one row per household registered at each as-of
date. It is written in DuckDB's dialect and
transpiles with sqlglot (`feature_sql("spark")`), so the same definitions run on Spark.

Knowledge-date correctness lives here, once, for every feature: at as-of date T a source row
is used only if its event date <= T, its knowledge date <= T, and it is the latest version of
its primary key known at T (a later correction, or an end date recorded after T, is invisible
at T, so a spell whose end was not yet known is open).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import sqlglot
from sqlglot import exp

from safetynet.contracts import table as contract_table

from .definitions import (
    FEATURES,
    FEATURES_BY_NAME,
    REGISTRY_AUDIT_COLUMNS,
    SOURCES,
    Agg,
    Derived,
    Feature,
    output_columns,
)
from .sqlfn import age_years, months_before, within
from .store import stored_key

AS_OF = "as_of_dates"
MEMBER_COLUMNS = ("person_key", "household_key", "as_of_date", "age", "sex",
                  "relation_to_head", "registered_date")
SPINE_COLUMNS = ("household_key", "as_of_date")
_SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "flag": "INTEGER", "date": "DATE",
              "str": "VARCHAR"}
_ACROSS = {"sum": "sum", "count": "sum", "members": "sum", "max": "max", "min": "min"}
_BOUND = re.compile(r"\{T-(\d+)\}")


def _bind(sql: str, prefix: str) -> str:
    """Bind `{T}` and `{T-n}` to the as-of date and its precomputed boundary columns."""
    sql = _BOUND.sub(lambda mt: f"{prefix}t_{mt.group(1)}m", sql)
    return sql.replace("{T}", f"{prefix}as_of_date")


def _known(alias: str, at: str) -> str:
    return (f"{alias}.knowledge_date <= {at} AND ({alias}._valid_to IS NULL "
            f"OR {alias}._valid_to > {at})")


def _versions(table: str, versioned: bool) -> str:
    """All stored versions of `table` with the date each stopped being the latest known.

    `versioned=False` is for a table known to hold one version per key (e.g. a single
    delivery: ingest rejects duplicate keys within one), which skips the window."""
    if not versioned:
        return f"v_{table} AS (SELECT *, CAST(NULL AS DATE) AS _valid_to FROM {table})"
    pk = ", ".join(stored_key(contract_table(table)))
    return (f"v_{table} AS (SELECT *, LEAD(knowledge_date) OVER (PARTITION BY {pk} "
            f"ORDER BY knowledge_date, _commit_rank, _source_line) AS _valid_to FROM {table})")


def _outer(sql: str) -> str:
    """Rewrite an expression written against `s.`/`m.`/`{T}` for the joined subquery `j`."""
    sql = re.sub(r"\bm\.(\w+)", r"j.m_\1", sql)
    sql = re.sub(r"\bs\.(\w+)", r"j.\1", sql)
    return _bind(sql, "j.m_")


def _condition(spec: Agg) -> str:
    return _outer(_condition_raw(spec))


def _condition_raw(spec: Agg) -> str:
    src = SOURCES[spec.table]
    parts = []
    on = spec.on or f"s.{src.event}"
    if spec.window is not None:
        parts.append(within(on, spec.window))
    elif spec.on:
        parts.append(f"{on} <= {{T}}")
    if spec.active:
        if src.end is None:
            raise ValueError(f"{spec.table} has no end date: `active` is undefined")
        parts.append(f"(s.{src.end} IS NULL OR s.{src.end} > {{T}})")
    if spec.where:
        parts.append(f"({spec.where})")
    return " AND ".join(parts)


def _aggregate(spec: Agg) -> str:
    """The aggregate over source rows (per member for person-level sources)."""
    cond, expr = (_condition(spec) if _condition_raw(spec) else ""), _outer(spec.expr)
    if spec.agg == "count":
        return f"COUNT(CASE WHEN {cond} THEN 1 END)" if cond else "COUNT(*)"
    if spec.agg == "members":
        if SOURCES[spec.table].join != "person":
            raise ValueError("agg='members' needs a person-level source")
        return f"MAX(CASE WHEN {cond} THEN 1 ELSE 0 END)" if cond else "1"
    value = f"CASE WHEN {cond} THEN {expr} END" if cond else expr
    if spec.agg == "count_distinct":
        if SOURCES[spec.table].join == "person":
            raise ValueError("count_distinct is not composable across members; use "
                             "agg='members' or `across`")
        return f"COUNT(DISTINCT {value})"
    return f"{spec.agg.upper()}({value})"


@dataclass(frozen=True)
class _Group:
    """Aggregates of one source computed by one join (one `agg_` CTE).

    `window` (start, end) joins only rows whose event date is in (T - start months,
    T - end months]; `pushdown` is a filter on source columns that every aggregate of the
    group implies. Both only shrink the join; neither changes a value."""

    name: str
    table: str
    feats: tuple[Feature, ...]
    window: tuple[int, int] | None = None
    pushdown: str | None = None


def _event_window(spec: Agg) -> tuple[int, int] | None:
    """(start, end) months if the aggregate reads only rows with event date in that window."""
    if spec.window is None or spec.on is not None or spec.active:
        return None
    w = spec.window
    return (w, 0) if isinstance(w, int) else w


def _empty_is_missing(f: Feature) -> bool:
    """True if the value over no rows equals the value over rows none of which qualifies
    (so rows the aggregate never reads may be left out of its join)."""
    spec = f.spec
    assert isinstance(spec, Agg)
    return spec.agg in ("sum", "max", "min") or f.missing.rule == "zero"


def _pushable(f: Feature) -> str | None:
    """The aggregate's filter if it reads source columns only (not members, not T)."""
    where = f.spec.where  # type: ignore[union-attr]
    if where and "m." not in where and "{T" not in where and _empty_is_missing(f):
        return where
    return None


def _per_member(spec: Agg) -> bool:
    """True if the aggregate needs the per-member step (see `_source_cte`)."""
    return SOURCES[spec.table].join == "person" and (
        spec.agg == "members" or (spec.across or _ACROSS[spec.agg]) != _ACROSS[spec.agg])


def _groups(table: str, feats: list[Feature]) -> list[_Group]:
    """Split a source's aggregates so that big tables are joined over as little history,
    and with as little work per joined row, as the definitions need.

    Aggregates windowed on the event date join only the span of their windows (monthly
    series lag, so the span ends months before T). Aggregates that read all history, or
    that need the per-member step while the windowed ones do not, can move to a second join
    when every one of them filters on source columns (e.g. serious-illness claims): that
    join keeps only rows passing one of the filters. Window columns (`extra`) see all of a
    member's rows, so such sources are never restricted."""
    src = SOURCES[table]
    whole = [_Group(f"agg_{table}", table, tuple(feats))]
    if src.join == "members" or src.extra:
        return whole
    main = [f for f in feats if _event_window(f.spec) and _empty_is_missing(f)]  # type: ignore[arg-type]
    side = [f for f in feats if f not in main]
    if not all(_pushable(f) for f in side):
        return whole
    per_member = [f for f in main if _per_member(f.spec)]  # type: ignore[arg-type]
    if per_member and len(per_member) < len(main) and all(_pushable(f) for f in per_member):
        main = [f for f in main if f not in per_member]
        side += per_member
    pushdown = " OR ".join(f"({w})" for w in dict.fromkeys(_pushable(f) for f in side))
    if not main:
        return [_Group(f"agg_{table}", table, tuple(side), pushdown=pushdown)]
    spans = [_event_window(f.spec) for f in main]  # type: ignore[arg-type]
    window = (max(s[0] for s in spans), min(s[1] for s in spans))  # type: ignore[index]
    groups = [_Group(f"agg_{table}", table, tuple(main), window=window)]
    if side:
        groups.append(_Group(f"agg_{table}_filtered", table, tuple(side), pushdown=pushdown))
    return groups


def _source_cte(group: _Group, bounds: list[int]) -> str:
    table, feats = group.table, list(group.feats)
    src = SOURCES[table]
    at = "m.as_of_date"
    cols = MEMBER_COLUMNS if src.join in ("members", "person") else SPINE_COLUMNS
    cols = (*cols, *(f"t_{n}m" for n in bounds))
    m_cols = ", ".join(f"m.{c} AS m_{c}" for c in cols)
    if src.join == "members":
        inner = f"SELECT {m_cols} FROM members m"
    else:
        key = "person_key" if src.join == "person" else "household_key"
        frm = "members" if src.join == "person" else "spine"
        pred = [f"s.{key} = m.{key}", _known("s", at), f"s.{src.event} <= {at}"]
        if group.window is not None:
            start, end = group.window
            pred.append(f"s.{src.event} > m.t_{start}m")
            if end:
                pred.append(f"s.{src.event} <= m.t_{end}m")
        if group.pushdown:
            pred.append(f"({group.pushdown})")
        extras = "".join(f", {_bind(e, 'm.')} AS {name}" for name, e in src.extra)
        inner = (f"SELECT {m_cols}, s.*{extras} FROM {frm} m JOIN v_{table} s ON "
                 + " AND ".join(pred))
    aggs = [(f.name, _aggregate(f.spec), f.spec) for f in feats]  # type: ignore[arg-type]
    per_member_needed = any(_per_member(spec) for _, _, spec in aggs)  # type: ignore[arg-type]
    if src.join != "person" or not per_member_needed:
        cols_sql = ",\n    ".join(f"{sql} AS {name}" for name, sql, _ in aggs)
        return (f"{group.name} AS (SELECT j.m_household_key AS household_key, "
                f"j.m_as_of_date AS as_of_date,\n    {cols_sql}\n  FROM ({inner}) j "
                f"GROUP BY j.m_household_key, j.m_as_of_date)")
    # Aggregate per member (person, as-of date), then across the household's members:
    # cheaper than COUNT(DISTINCT person) per household, and it expresses "most for one
    # member". A person belongs to one household at a given as-of date.
    per_member = ",\n    ".join(f"{sql} AS {name}" for name, sql, _ in aggs)
    across = ",\n    ".join(
        f"{(spec.across or _ACROSS[spec.agg]).upper()}(pm.{name}) AS {name}"
        for name, _, spec in aggs)
    return (f"{group.name} AS (SELECT pm.household_key, pm.as_of_date,\n    {across}\n"
            f"  FROM (SELECT ANY_VALUE(j.m_household_key) AS household_key, "
            f"j.m_as_of_date AS as_of_date,\n    {per_member}\n  FROM ({inner}) j "
            f"GROUP BY j.m_person_key, j.m_as_of_date) pm "
            f"GROUP BY pm.household_key, pm.as_of_date)")


def _with_missing(f: Feature, sql: str) -> str:
    if f.missing.rule == "zero":
        sql = f"COALESCE({sql}, 0)"
    elif f.missing.rule == "constant":
        sql = f"COALESCE({sql}, {f.missing.value!r})"
    return sql


@cache
def _expression(name: str) -> str:
    """SQL for feature `name` over the columns of `base` (derived features inlined)."""
    f = FEATURES_BY_NAME[name]
    if isinstance(f.spec, Agg):
        return name

    def inline(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in FEATURES_BY_NAME \
                and isinstance(FEATURES_BY_NAME[node.name].spec, Derived):
            return exp.Paren(this=sqlglot.parse_one(_expression(node.name), read="duckdb"))
        return node

    tree = sqlglot.parse_one(f.spec.expr, read="duckdb").transform(inline)
    return _with_missing(f, tree.sql(dialect="duckdb"))


def used_tables() -> list[str]:
    """Store tables the feature query reads."""
    tables = {"households", "persons"}
    tables |= {f.spec.table for f in FEATURES if isinstance(f.spec, Agg)}
    return sorted(t for t in tables if t != "members")


@cache
def feature_sql(dialect: str = "duckdb", unversioned: frozenset[str] = frozenset()) -> str:
    """The whole feature query: one row per (household registered at T, T in as_of_dates).

    `unversioned` names tables known to hold a single version per key (skips the
    version window); the result is the same either way."""
    by_table: dict[str, list[Feature]] = {}
    for f in FEATURES:
        if isinstance(f.spec, Agg):
            by_table.setdefault(f.spec.table, []).append(f)
    # Window boundaries T - n months, computed once per as-of date rather than per row.
    raw = [_condition_raw(f.spec) + f.spec.expr for f in FEATURES if isinstance(f.spec, Agg)]
    raw += [e for src in SOURCES.values() for _, e in src.extra]
    groups = [g for t, feats in by_table.items() for g in _groups(t, feats)]
    bounds = sorted({int(n) for sql in raw for n in _BOUND.findall(sql)}
                    | {n for g in groups if g.window for n in g.window if n})
    sources = [_source_cte(g, bounds) for g in groups]
    at = "a.as_of_date"
    t_cols = "".join(f", a.t_{n}m" for n in bounds)
    ctes = [_versions(t, t not in unversioned) for t in used_tables()]
    ctes.append(
        "dates AS (SELECT as_of_date"
        + "".join(f", CAST({months_before('as_of_date', n)} AS DATE) AS t_{n}m" for n in bounds)
        + f" FROM {AS_OF})")
    ctes.append(
        f"spine AS (SELECT h.household_key, a.as_of_date{t_cols}, h.district, "
        f"{', '.join('h.' + c for c in REGISTRY_AUDIT_COLUMNS)} FROM v_households h "
        f"JOIN dates a ON {_known('h', at)} AND h.registered_date <= {at})")
    ctes.append(
        f"members AS (SELECT p.person_key, p.household_key, a.as_of_date{t_cols}, "
        f"{age_years('p.birth_date', at)} AS age, p.sex, p.relation_to_head, "
        f"p.registered_date FROM v_persons p JOIN dates a ON {_known('p', at)} "
        f"AND p.registered_date <= {at} AND (p.death_date IS NULL OR p.death_date > {at}))")
    ctes += sources
    joins = "\n".join(
        f"LEFT JOIN {g.name} ON {g.name}.household_key = spine.household_key "
        f"AND {g.name}.as_of_date = spine.as_of_date" for g in groups)
    base_cols = ", ".join(
        _with_missing(f, f"{g.name}.{f.name}") + f" AS {f.name}" for g in groups for f in g.feats)
    ctes.append(f"base AS (SELECT spine.household_key, spine.as_of_date, spine.district, "
                f"{', '.join('spine.' + c for c in REGISTRY_AUDIT_COLUMNS)}, {base_cols} "
                f"FROM spine\n{joins})")
    keyed = {"household_key", "as_of_date", "district", *REGISTRY_AUDIT_COLUMNS}
    select = [c if c in keyed else
              f"CAST({_expression(c)} AS {_SQL_TYPES[FEATURES_BY_NAME[c].dtype]}) AS {c}"
              for c in output_columns()]
    sql = ("WITH " + ",\n".join(ctes) + "\nSELECT " + ",\n  ".join(select)
           + "\nFROM base WHERE household_size > 0")
    if dialect == "duckdb":
        return sql
    return sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True,
                             unsupported_level=sqlglot.ErrorLevel.RAISE)[0]
