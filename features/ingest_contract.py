"""Ingest step 4: the contract's pandera checks ('missing_required', 'missing_id',
'invalid_category', 'negative_amount', 'out_of_range').

pandera validates only the rows that the schema's checks, translated to SQL (`pandera_sql`),
flag; a schema with checks that cannot be translated is validated on every row. The reasons
and details are pandera's either way.
"""

from __future__ import annotations

import math

import duckdb
import pandas as pd
import pandera.errors
import pyarrow as pa

from safetynet.contracts import Table, pandera_schema

from .ingest_typed import quote

PANDERA_CHUNK = 1_000_000  # rows handed to pandera at a time
PANDERA_REASONS = {"not_nullable": "missing_required", "invalid_category": "invalid_category",
                   "negative_amount": "negative_amount", "out_of_range": "out_of_range"}
_DETAILS = {"missing_required": "required value is empty", "missing_id": "resident ID is empty",
            "invalid_category": "not an allowed value", "negative_amount": "negative amount",
            "out_of_range": "outside the allowed range", "wrong_type": "wrong type"}
_ARROW_TO_PANDAS = {pa.string(): pd.StringDtype("pyarrow"),
                    pa.large_string(): pd.StringDtype("pyarrow"),
                    pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(),
                    pa.bool_(): pd.BooleanDtype()}
_FAILS = {  # pandera built-in check -> SQL that is true where a value fails it
    "isin": ("allowed_values", "{x} NOT IN ({v})"),
    "notin": ("forbidden_values", "{x} IN ({v})"),
    "greater_than_or_equal_to": ("min_value", "{x} < {v}"),
    "greater_than": ("min_value", "{x} <= {v}"),
    "less_than_or_equal_to": ("max_value", "{x} > {v}"),
    "less_than": ("max_value", "{x} >= {v}"),
}


def ingest_schema(t: Table):
    """The contract's pandera schema with the storage ingest hands it: Arrow-backed strings
    and datetime64[ms] dates (any date fits, where nanoseconds stop at 2262)."""
    return pandera_schema(t).update_columns({
        **{c.name: {"dtype": pd.StringDtype("pyarrow")}
           for c in t.columns if c.kind in ("str", "id", "category")},
        **{c.name: {"dtype": "datetime64[ms]"} for c in t.columns if c.kind == "date"}})


def _literal(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value) if math.isfinite(value) else None


def pandera_sql(schema) -> str | None:
    """A SQL condition true for every row that `schema` (a pandera DataFrameSchema) could
    reject, or None when the schema has a check this does not translate (then pandera
    validates every row). Only selects rows: pandera still decides and words each failure.
    """
    if schema.checks or schema.unique:
        return None
    parts = []
    for name, col in schema.columns.items():
        if col.regex or col.unique:
            return None
        x = quote(name)
        if not col.nullable:
            parts.append(f"{x} IS NULL")
        for chk in col.checks:
            fn = getattr(getattr(chk, "_check_fn", None), "__name__", None)
            if fn not in _FAILS or chk.groupby is not None:
                return None
            stat, template = _FAILS[fn]
            value = chk.statistics.get(stat)
            values = value if isinstance(value, list | tuple | set | frozenset) else [value]
            literals = [_literal(v) for v in values]
            if not literals or None in literals or (len(literals) > 1 and "IN" not in template):
                return None
            parts.append(template.format(x=x, v=", ".join(literals)))
            if not chk.ignore_na:
                parts.append(f"{x} IS NULL")
    return " OR ".join(parts) if parts else "false"


def flag_contract_failures(con: duckdb.DuckDBPyConnection, t: Table) -> None:
    """Contract failures become `_r`, `_c`, `_d` of work_<t> (they come before the ID and
    linkage rules, so they replace whatever those found). Rows reach pandera in chunks of
    `PANDERA_CHUNK` with the storage of `ingest_schema`."""
    schema = ingest_schema(t)
    flagged = pandera_sql(schema)
    cols = ", ".join(f"CAST({quote(c.name)} AS TIMESTAMP_MS) AS {quote(c.name)}"
                     if c.kind == "date" else quote(c.name) for c in t.columns)
    where = "_reason IS NULL" + (f" AND ({flagged})" if flagged is not None else "")
    reader = con.sql(f"SELECT _line, {cols} FROM work_{t.name} "
                     f"WHERE {where}").to_arrow_reader(PANDERA_CHUNK)
    bad: list[pd.DataFrame] = []
    for batch in reader:
        frame = batch.to_pandas(types_mapper=_ARROW_TO_PANDAS.get).set_index("_line")
        try:
            schema.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            bad.append(_failures(t, schema, exc.failure_cases))
    if not bad:
        return
    df = pd.concat(bad).sort_values(["line", "order"]).drop_duplicates("line")
    con.register("pandera_bad", df[["line", "reason", "column", "detail"]])
    con.execute(f"UPDATE work_{t.name} SET _r = p.reason, _c = p.\"column\", "
                "_d = p.detail FROM pandera_bad p WHERE _line = p.line")
    con.unregister("pandera_bad")


def _failures(t: Table, schema, fc: pd.DataFrame) -> pd.DataFrame:
    """pandera failure cases -> ledger rows (line, reason, column, detail, order); the reason
    is the failing check's name. Values of personal columns are not shown."""
    if fc["index"].isna().any():  # a schema-level failure: a bug in the typed stage
        raise RuntimeError(f"{t.name}: pandera schema-level failure:\n{fc.to_string()}")
    order = {c.name: i for i, c in enumerate(t.columns)}
    names = [
        "not_nullable" if chk == "not_nullable" or pd.isna(num)
        else schema.columns[col].checks[int(num)].name
        for col, chk, num in zip(fc["column"], fc["check"], fc["check_number"], strict=True)
    ]
    reason = pd.Series(names, index=fc.index).map(
        lambda s: PANDERA_REASONS.get(s, "wrong_type"))
    is_id = fc["column"].eq(t.person_column) & reason.eq("missing_required")
    reason = reason.where(~is_id, "missing_id")
    personal = fc["column"].map(lambda c: t.column(c).personal
                                or c in (t.person_column, t.household_column))
    value = fc["failure_case"].astype(str).str.slice(0, 40)
    detail = reason.map(_DETAILS)
    detail = detail.where(personal | reason.isin(["missing_required", "missing_id"]),
                          "value " + value + ": " + detail)
    return pd.DataFrame({"line": fc["index"].astype("int64"), "reason": reason,
                         "column": fc["column"], "detail": detail,
                         "order": fc["column"].map(order)})
