"""The shortcuts that make ingest fast give the same answers as the plain rules.

Parquet columns of the contract's type skip the detour through text, `trim` is skipped where
it cannot change a value, pandera sees only the rows its checks translated to SQL flag, plain
resident IDs are checked on byte arrays, and HMAC states are computed once.
"""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pandas as pd
import pandera.pandas as pa
import pytest
from ingest_fixture import DELIVERY_DATE, person_id, valid_tables, write_delivery
from test_ingest_pipeline import settings  # noqa: F401 (fixture)

import safetynet.features.ingest_contract as contract_step
from safetynet import ids
from safetynet.contracts import TABLES, Column, table
from safetynet.features.ingest import ingest
from safetynet.features.ingest_contract import ingest_schema, pandera_sql
from safetynet.features.ingest_typed import _trim, typed_value
from safetynet.pseudonym import pseudonym, pseudonymize

NATIVE = {  # (contract kind, DuckDB type) -> SQL values, including the awkward ones
    ("date", "DATE"): ["DATE '2024-02-29'", "DATE '0001-01-01'", "DATE '9999-12-31'",
                       "DATE '1500-06-01'", "DATE '2300-01-01'", "make_date(10000, 1, 1)",
                       "DATE '0001-01-01' - 1", "'infinity'::DATE", "'-infinity'::DATE"],
    ("float", "DOUBLE"): ["0.0", "-0.0", "1e16", "1.5e-7", "0.1 + 0.2", "-12.5",
                          "1.7976931348623157e308", "5e-324", "'nan'", "'inf'", "'-inf'"],
    ("int", "BIGINT"): ["0", "-5", "9007199254740993", "9223372036854775807",
                        "-9223372036854775808", "31"],
    ("int", "INTEGER"): ["0", "-2147483648", "2147483647", "7"],
    ("bool", "BOOLEAN"): ["true", "false"],
}


@pytest.mark.parametrize(("kind", "sql_type"), list(NATIVE))
def test_native_parquet_types_are_judged_like_their_text(kind, sql_type):
    col = Column("v", kind, "a value")
    values = [f"CAST({v} AS {sql_type})" for v in NATIVE[(kind, sql_type)]] + [
        f"NULL::{sql_type}"]
    con = duckdb.connect()
    con.execute("CREATE TABLE raw AS " + " UNION ALL ".join(f"SELECT {v} AS v" for v in values))
    native, native_raw = typed_value(col, "v", sql_type)
    text, text_raw = typed_value(col, "CAST(v AS VARCHAR)", "VARCHAR")
    got = con.execute(
        f"SELECT CAST(v AS VARCHAR), {native} IS NOT DISTINCT FROM {text}, "
        f"({native_raw} IS NOT NULL AND {native} IS NULL) = "
        f"({text_raw} IS NOT NULL AND {text} IS NULL), {native} IS NULL FROM raw").fetchall()
    assert all(same_value and same_failure for _, same_value, same_failure, _ in got), got
    # the awkward values do fail where the type can hold them
    assert any(is_null for *_, is_null in got[:-1]) == (sql_type in ("DATE", "DOUBLE", "BIGINT"))


def test_trim_is_skipped_only_where_it_changes_nothing():
    words = ["", " ", "a", " a", "a ", "\ta", "a\t", "\u3000a", "a\u00a0", "\u2003a\u2003",
             "张三", " 张三 ", "a\u200b", "e\u0301", "420106198005171238", "  4201 "]
    con = duckdb.connect()
    con.execute("CREATE TABLE w (x VARCHAR)")
    con.executemany("INSERT INTO w VALUES (?)", [[w] for w in words])
    rows = con.execute(f"SELECT x, {_trim('x')}, trim(x) FROM w").fetchall()
    assert [r[1] for r in rows] == [r[2] for r in rows]


def _typed_frame(t, n: int, rng: random.Random) -> pd.DataFrame:
    """Typed rows, each value valid, out of its rule or missing."""
    data = {}
    for c in t.columns:
        if c.values:
            pool = [*c.values, "unknown", None]
        elif c.kind in ("int", "float"):
            lo = c.min if c.min is not None else 0
            hi = c.max if c.max is not None else 1000
            pool = [lo, hi, lo - 1, hi + 1, (lo + hi) / 2 if c.kind == "float" else lo + 1, None]
        elif c.kind == "date":
            pool = [dt.datetime(2024, 1, 5), dt.datetime(1500, 1, 1), None]
        elif c.kind == "bool":
            pool = [True, False, None]
        else:
            pool = ["x1", None]
        data[c.name] = [rng.choice(pool) for _ in range(n)]
    dtypes = {"int": "Int64", "float": "Float64", "bool": "boolean", "date": "datetime64[ms]"}
    return pd.DataFrame({
        c.name: pd.Series(data[c.name], dtype=dtypes.get(c.kind, pd.StringDtype("pyarrow")))
        for c in t.columns})


@pytest.mark.parametrize("name", [t.name for t in TABLES])
def test_pandera_sql_flags_exactly_the_rows_pandera_rejects(name):
    t = table(name)
    schema = ingest_schema(t)
    frame = _typed_frame(t, 300, random.Random(name))
    try:
        schema.validate(frame, lazy=True)
        rejected = set()
    except pa.errors.SchemaErrors as exc:
        rejected = set(exc.failure_cases["index"].dropna().astype(int))
    con = duckdb.connect()
    con.register("frame", frame.reset_index(names="_i"))
    flagged = {r[0] for r in con.execute(
        f"SELECT _i FROM frame WHERE {pandera_sql(schema)}").fetchall()}
    assert rejected and flagged == rejected


def test_untranslatable_check_falls_back_to_pandera_on_every_row(settings, tmp_path,  # noqa: F811
                                                                  monkeypatch):
    tables = valid_tables()
    tables["claims"].loc[2, "out_of_pocket"] = "-3"
    tables["disability_certificates"].loc[3, "grade"] = "7"
    tables["pensions"].loc[2, "pension_type"] = ""
    fast = ingest(write_delivery(tmp_path / "a", tables), settings)

    def opaque(t):  # the same rules as lambdas: nothing pandera_sql can translate
        schema = ingest_schema(t)
        for c in t.columns:
            if c.min is not None:
                schema = schema.update_column(c.name, checks=[
                    pa.Check(lambda s, m=c.min: s >= m,
                             name="negative_amount" if c.min == 0 else "out_of_range"),
                    *([pa.Check(lambda s, m=c.max: s <= m, name="out_of_range")]
                      if c.max is not None else [])])
        assert t.name != "claims" or pandera_sql(schema) is None
        return schema

    monkeypatch.setattr(contract_step, "ingest_schema", opaque)
    slow = ingest(write_delivery(tmp_path / "b", tables, delivery_date="2024-12-30"), settings)
    cols = ["file", "line", "reason", "column", "detail"]
    a = pd.read_parquet(fast.path / "rejects.parquet")[cols]
    b = pd.read_parquet(slow.path / "rejects.parquet")[cols]
    assert {"negative_amount", "out_of_range", "missing_required"} <= set(a["reason"])
    pd.testing.assert_frame_equal(a, b)


def test_typed_parquet_reads_like_the_csv_of_its_values(settings, tmp_path):  # noqa: F811
    """Parquet with DATE, DOUBLE, BIGINT and BOOLEAN columns, awkward values included, gives
    the ledger and stored rows that the CSV of the same values gives."""
    tables = valid_tables()
    claims = tables["claims"]
    claims.loc[0, "total_cost"] = "nan"
    claims.loc[1, "reimbursed"] = "inf"
    claims.loc[2, "out_of_pocket"] = "-0.0"
    claims.loc[3, "out_of_pocket"] = "1e+16"
    tables["persons"].loc[0, "birth_date"] = "1500-01-01"  # before datetime64[ns] begins
    tables["disability_certificates"].loc[1, "grade"] = "9007199254740993"
    csv = ingest(write_delivery(tmp_path / "csv", tables), settings)
    casts = {"date": "DATE", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN"}
    con = duckdb.connect()
    for t in TABLES:  # written by DuckDB: pandas would store NaN as null
        con.register("df", tables[t.name])
        (tmp_path / "pq" / t.department).mkdir(parents=True, exist_ok=True)
        con.execute("COPY (SELECT " + ", ".join(
            f"CAST(NULLIF({c.name}, '') AS {casts[c.kind]}) AS {c.name}" if c.kind in casts
            else c.name for c in t.columns) + f" FROM df) TO "
            f"'{tmp_path / 'pq' / t.department / t.name}.parquet' (FORMAT parquet)")
        con.unregister("df")
    day = dt.date.fromisoformat(DELIVERY_DATE)
    pq = ingest(tmp_path / "pq", settings, delivery_date=day)
    cols = ["line", "reason", "column", "detail"]
    a = pd.read_parquet(csv.path / "rejects.parquet")
    b = pd.read_parquet(pq.path / "rejects.parquet")
    assert {"wrong_type", "out_of_range"} <= set(a["reason"])
    pd.testing.assert_frame_equal(a[cols], b[cols])
    for t in TABLES:
        x, y = (pd.read_parquet(r.path / "tables" / f"{t.name}.parquet")
                .drop(columns="_delivery_id").sort_values("_source_line")
                .reset_index(drop=True) for r in (csv, pq))
        pd.testing.assert_frame_equal(x, y)
    born = pd.read_parquet(pq.path / "tables" / "persons.parquet")["birth_date"]
    assert born.min() == dt.date(1500, 1, 1)


def test_plain_ids_on_byte_arrays_agree_with_the_general_path():
    rng = random.Random(7)
    born = [dt.date(1900, 1, 1) + dt.timedelta(days=rng.randrange(45000)) for _ in range(300)]
    valid = [ids.make("420106", b, rng.randrange(1000)) for b in born]
    raw = [*valid, *(v[:17] + "0123456789X"[(rng.randrange(11))] for v in valid[:100]),
           *(v.lower() for v in valid if v.endswith("X")), "420106800517123", "420106801317123",
           *(f"420106{d}123{c}" for d in ("19000229", "20000229", "16770921", "16770922",
                                         "22620411", "22620412", "00000101", "19901301")
             for c in "0123456789Xx"),
           " " + valid[0], valid[1][:6] + "-" + valid[1][6:], "", None, "X" * 18, "abc",
           valid[2] + "0", valid[3][:17] + "Y", person_id(3)]
    s = pd.Series(raw, dtype="string")
    fast = ids.normalize_series_legacy(s)
    general = ids._normalize_general(s)
    for f, g in zip(fast, general, strict=True):
        pd.testing.assert_series_equal(f, g, check_dtype=False)
    assert fast[2].sum() == 1 and fast[1].isna().sum() < len(raw)


@pytest.mark.parametrize("secret", [b"", b"k", b"s" * 64, b"long" * 40])
def test_pseudonymize_is_the_same_hmac_as_pseudonym(secret):
    values = pd.Series(["420106198005171238", None, "张三", "H0001", "420106198005171238"],
                       dtype="string")
    got = pseudonymize(secret, "person", values)
    assert got.isna().tolist() == [False, True, False, False, False]
    assert [got[i] for i in (0, 2, 3)] == [pseudonym(secret, "person", values[i])
                                           for i in (0, 2, 3)]
    assert got[0] == got[4]
