"""`safetynet ingest DIR`: validate, link and pseudonymize one delivery into the offline store.

Pipeline (set-based: DuckDB for the bulk work, pandas only for chunks and distinct values):

1. whole files (`reading`): manifest, checksums, encoding, header; any problem raises
   `DeliveryError` before anything is written;
2. raw load: every column as text (Parquet: as stored), with its source line; malformed
   records -> 'malformed_row';
3. typed conversion in SQL, judging every value by its text: 'wrong_type', 'invalid_date';
4. pandera (`contracts.pandera_schema`, lazy) on the rows its checks, translated to SQL, flag:
   'missing_required', 'invalid_category', 'negative_amount', 'out_of_range';
5. rules pandera cannot express: resident IDs ('missing_id', 'malformed_id',
   'invalid_id_check'; legacy 15-digit IDs converted), 'future_date',
   'knowledge_before_event', 'unknown_household', 'unknown_person', then 'duplicate'
   among the rows that passed everything else;
6. commit: accepted rows (each table as soon as it is checked), the reject ledger and
   report.json are written to `store/.staging-<id>/`, names and addresses are upserted into
   the identity table, and the staging directory is renamed to `store/deliveries/<id>/` in
   one step.

A row is rejected for the first problem found, in the order above; every input row is either
accepted or in the ledger.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from safetynet.config import Settings, get_settings
from safetynet.contracts import Column, Table, pandera_schema

from . import reading
from .identity import upsert_identity
from .linkage import household_map, id_map
from .reading import DeliveryError, SourceFile
from .store import OfflineStore, stored_columns

# order matters: the registries are checked before the tables that link to them
REGISTRY_FIRST = ("households", "persons")
PANDERA_CHUNK = 1_000_000
LEDGER_COLUMNS = ["delivery_id", "department", "file", "line", "reason", "column", "detail"]
PANDERA_REASONS = {"not_nullable": "missing_required", "invalid_category": "invalid_category",
                   "negative_amount": "negative_amount", "out_of_range": "out_of_range"}
_ARROW_TO_PANDAS = {pa.string(): pd.StringDtype("pyarrow"),
                    pa.large_string(): pd.StringDtype("pyarrow"),
                    pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(),
                    pa.bool_(): pd.BooleanDtype()}


@dataclass
class IngestResult:
    delivery_id: str
    status: str  # 'committed' or 'already_ingested'
    path: Path
    report: dict


def delivery_id_of(files: list[SourceFile]) -> str:
    """Content address of a delivery: hash of its files' paths and SHA-256 checksums."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.relpath):
        h.update(f"{f.relpath}\t{f.sha256}\n".encode())
    return h.hexdigest()[:16]


def ingest(directory: Path, settings: Settings | None = None, fmt: str = "auto",
           delivery_date: dt.date | None = None,
           progress: Callable[[str], None] | None = None) -> IngestResult:
    """Ingest the delivery in `directory`; see the module docstring.

    `delivery_date` bounds event and knowledge dates ('future_date'); default: the
    manifest's `delivery_date` (or `extract_date`), else today. Raises `DeliveryError` for
    whole-file problems.
    """
    settings = settings or get_settings()
    say = progress or (lambda _msg: None)
    directory = Path(directory)
    manifest = reading.load_manifest(directory)
    files = reading.find_files(directory, fmt, manifest)
    for src in files:
        reading.check_file(src)
    delivery_id = delivery_id_of(files)
    store = OfflineStore(settings)
    final = store.deliveries_dir / delivery_id
    if final.exists():
        report = json.loads((final / "report.json").read_text(encoding="utf-8"))
        return IngestResult(delivery_id, "already_ingested", final, report)
    secret = settings.secret()
    ddate = delivery_date or _manifest_date(manifest) or dt.date.today()

    with reading.workdir(settings.home) as tmp:
        con = duckdb.connect(config={"temp_directory": str(Path(tmp) / "duckdb"),
                                     "preserve_insertion_order": True,
                                     "memory_limit": settings.ingest_memory_limit})
        try:
            run = _Run(con, files, delivery_id, ddate, secret, store, say)
            run.load()  # last step that may raise DeliveryError
            # CSV line numbers come from the row order of the loaded tables; from here on
            # every order that matters is explicit, and DuckDB may use less memory without it
            con.execute("SET preserve_insertion_order = false")
            staging = settings.store_dir / f".staging-{delivery_id}"
            shutil.rmtree(staging, ignore_errors=True)  # left over from a crashed run
            try:
                (staging / "tables").mkdir(parents=True)
                run.validate(staging / "tables")
                report = run.write(staging)
                report["directory"] = str(directory.resolve())
                (staging / "report.json").write_text(json.dumps(report, indent=2,
                                                                ensure_ascii=False))
                say("updating the identity table")
                upsert_identity(settings.identity_path, con)
                final.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(final)  # the commit: readers see all of it or none
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            con.close()
    return IngestResult(delivery_id, "committed", final, report)


def _manifest_date(manifest: dict) -> dt.date | None:
    value = manifest.get("delivery_date") or manifest.get("extract_date")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise DeliveryError("manifest.json", f"delivery_date {value!r} is not a date") from exc


def _q(name: str) -> str:
    return '"' + name + '"'


_TEXT_CHECKED = ("date", "int", "float", "bool")
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")


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
    test, and most values are plain ASCII."""
    return (f"CASE WHEN strlen({x}) = length({x}) AND NOT starts_with({x}, ' ') "
            f"AND NOT ends_with({x}, ' ') THEN {x} ELSE trim({x}) END")


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


_FAILS = {  # pandera built-in check -> SQL that is true where a value fails it
    "isin": ("allowed_values", "{x} NOT IN ({v})"),
    "notin": ("forbidden_values", "{x} IN ({v})"),
    "greater_than_or_equal_to": ("min_value", "{x} < {v}"),
    "greater_than": ("min_value", "{x} <= {v}"),
    "less_than_or_equal_to": ("max_value", "{x} > {v}"),
    "less_than": ("max_value", "{x} >= {v}"),
}


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
        x = _q(name)
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


class _Run:
    """The state of one ingest: a DuckDB connection with raw_, typed_ and work_ tables."""

    def __init__(self, con: duckdb.DuckDBPyConnection, files: list[SourceFile],
                 delivery_id: str, delivery_date: dt.date, secret: bytes,
                 store: OfflineStore, say: Callable[[str], None]):
        self.con, self.delivery_id, self.delivery_date = con, delivery_id, delivery_date
        self.secret, self.store, self.say = secret, store, say
        order = {n: i for i, n in enumerate(REGISTRY_FIRST)}
        self.files = sorted(files, key=lambda f: order.get(f.table.name, len(order)))
        self.rows_read: dict[str, int] = {}
        self.legacy: dict[str, int] = {}
        self.linkage: dict[str, dict] = {}
        self.accepted: dict[str, int] = {}
        self.id_exprs: dict[str, dict[str, str]] = {}  # typed_<t> views: SQL of ID columns
        con.execute("CREATE TEMP TABLE ledger (tbl VARCHAR, line BIGINT, reason VARCHAR, "
                    "\"column\" VARCHAR, detail VARCHAR)")
        store.create_views(con, prefix="committed_")

    # --- stages ------------------------------------------------------------------------
    def load(self) -> None:
        for src in self.files:
            t = src.table
            self.say(f"reading {src.relpath}")
            n = reading.load_raw(self.con, src, f"raw_{t.name}", Path(self.con.execute(
                "SELECT current_setting('temp_directory')").fetchall()[0][0]).parent)
            want = src.declared.get("rows")
            if want is not None and int(want) != n:
                raise DeliveryError(src.relpath, f"{n} data rows but manifest.json declares "
                                    f"{want} (file truncated or changed)")
            self.rows_read[t.name] = n

    def validate(self, tables_dir: Path) -> None:
        """Check and link every table; write its accepted rows to `tables_dir` as soon as it
        is done, so that only one table's work (and the registries) is held at a time."""
        for src in self.files:
            t = src.table
            self.say(f"validating {src.relpath}")
            self.con.execute(f"INSERT INTO ledger SELECT '{t.name}', _line, 'malformed_row', "
                             f"NULL, detail FROM raw_{t.name}_malformed")
            self._typed(src)
        self._pseudonyms()
        for src in self.files:
            self.say(f"checking and linking {src.relpath}")
            self._rules(src.table)
            self._write_table(src.table, tables_dir)

    def _typed(self, src: SourceFile) -> None:
        """typed_<t>: typed columns plus the first conversion failure (_reason, _col, _detail).

        Text values are checked by a cheap pattern first, so DuckDB's lenient casts (which
        accept '2024/1/5' as a date or '0x10' as a number) cannot let a wrong format through.
        Parquet columns of the contract's own type skip the detour through text (see
        `typed_value`). A view for Parquet: only the work_<t> table reads it (ID columns are
        read from the raw values, see `_distinct`); a table for CSV, as its raw table is one
        anyway.
        """
        t = src.table
        types = dict(self.con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE raw_{t.name})").fetchall())
        inner, outer, fails = [], [], []
        for c in t.columns:
            typed, raw = typed_value(c, _q(c.name), types[c.name])
            inner.append(f"{typed} AS {_q(c.name)}")
            outer.append(_q(c.name))
            if raw is not None:
                rq = _q("_raw_" + c.name)
                inner.append(f"{raw} AS {rq}")
                reason = "invalid_date" if c.kind == "date" else "wrong_type"
                want = {"date": "a date (YYYY-MM-DD)", "int": "a whole number",
                        "float": "a number", "bool": "true or false"}[c.kind]
                shown = "" if c.personal else f"'||left(CAST({rq} AS VARCHAR), 40)||' "
                fails.append((f"{rq} IS NOT NULL AND {_q(c.name)} IS NULL", f"'{reason}'",
                              f"'{c.name}'", f"'value {shown}is not {want}'"))

        def case(i: int) -> str:
            if not fails:
                return "NULL::VARCHAR"
            return "CASE " + " ".join(f"WHEN {f[0]} THEN {f[i]}" for f in fails) + " END"

        kind = "TABLE" if src.format == "csv" else "VIEW"
        if kind == "VIEW":  # for `_pseudonyms`: typed IDs from the distinct raw values
            self.id_exprs[t.name] = {c.name: typed_value(c, _q(c.name), types[c.name])[0]
                                     for c in t.columns if c.kind in ("str", "id")}
        self.con.execute(
            f"CREATE OR REPLACE TEMP {kind} typed_{t.name} AS SELECT _line, "
            f"{case(1)} AS _reason, {case(2)} AS _col, {case(3)} AS _detail, "
            f"{', '.join(outer)} FROM (SELECT _line, {', '.join(inner)} FROM raw_{t.name})")
        if kind == "TABLE":
            for obj in (f"raw_{t.name}", f"raw_{t.name}_scan"):
                for what in ("VIEW", "TABLE"):
                    with contextlib.suppress(duckdb.CatalogException):
                        self.con.execute(f"DROP {what} IF EXISTS {obj}")

    def _pandera(self, t: Table) -> None:
        """Contract checks with pandera; failures become `_r` of work_<t> (they come before
        the ID and linkage rules, so they replace whatever those found).

        pandera validates only the rows that the schema's checks, translated to SQL
        (`pandera_sql`), flag; a schema with checks that cannot be translated is validated on
        every row. The reasons and details are pandera's either way. Rows travel in chunks
        with the storage of `ingest_schema`.
        """
        import pandera.errors

        schema = ingest_schema(t)
        flagged = pandera_sql(schema)
        cols = ", ".join(f"CAST({_q(c.name)} AS TIMESTAMP_MS) AS {_q(c.name)}"
                         if c.kind == "date" else _q(c.name) for c in t.columns)
        where = "_reason IS NULL" + (f" AND ({flagged})" if flagged is not None else "")
        reader = self.con.sql(f"SELECT _line, {cols} FROM work_{t.name} "
                              f"WHERE {where}").to_arrow_reader(PANDERA_CHUNK)
        bad: list[pd.DataFrame] = []
        for batch in reader:
            frame = batch.to_pandas(types_mapper=_ARROW_TO_PANDAS.get).set_index("_line")
            try:
                schema.validate(frame, lazy=True)
            except pandera.errors.SchemaErrors as exc:
                bad.append(self._failures(t, schema, exc.failure_cases))
        if not bad:
            return
        df = pd.concat(bad).sort_values(["line", "order"]).drop_duplicates("line")
        self.con.register("pandera_bad", df[["line", "reason", "column", "detail"]])
        self.con.execute(f"UPDATE work_{t.name} SET _r = p.reason, _c = p.\"column\", "
                         "_d = p.detail FROM pandera_bad p WHERE _line = p.line")
        self.con.unregister("pandera_bad")

    @staticmethod
    def _failures(t: Table, schema, fc: pd.DataFrame) -> pd.DataFrame:
        """pandera failure cases -> ledger rows; the reason is the failing check's name."""
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
        detail = reason.map({
            "missing_required": "required value is empty", "missing_id": "resident ID is empty",
            "invalid_category": "not an allowed value", "negative_amount": "negative amount",
            "out_of_range": "outside the allowed range", "wrong_type": "wrong type"})
        detail = detail.where(personal | reason.isin(["missing_required", "missing_id"]),
                              "value " + value + ": " + detail)
        return pd.DataFrame({"line": fc["index"].astype("int64"), "reason": reason,
                             "column": fc["column"], "detail": detail,
                             "order": fc["column"].map(order)})

    def _pseudonyms(self) -> None:
        """Distinct IDs -> person_key / household_key mapping tables (`idmap`, `hhmap`).

        Taken over every row (also rows that fail a check): a superset of the IDs that reach
        the rules, and a scan of one column instead of the whole typed table."""
        self.say("normalizing and pseudonymizing IDs")
        for table, col, make, kind in (("idmap", "resident_id", id_map, "person_column"),
                                       ("hhmap", "household_id", household_map,
                                        "household_column")):
            parts = [self._distinct(s.table.name, col)
                     for s in self.files if getattr(s.table, kind)]
            raw = (self.con.execute(f"SELECT raw FROM ({' UNION '.join(parts)}) "
                                    "WHERE raw IS NOT NULL").df()["raw"] if parts
                   else pd.Series([], dtype="string"))
            self.con.register(f"{table}_df", make(raw, self.secret))
            self.con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM {table}_df")
            self.con.unregister(f"{table}_df")

    def _distinct(self, name: str, col: str) -> str:
        """SQL for the distinct typed values of ID column `col` of table `name`."""
        expr = self.id_exprs.get(name, {}).get(col)
        if expr is None:
            return f"SELECT {_q(col)} AS raw FROM typed_{name}"
        # distinct raw values first: the typed value (trimmed) is then computed once each
        return f"SELECT {expr} AS raw FROM (SELECT DISTINCT {_q(col)} FROM raw_{name})"

    def _linked(self, name: str) -> None:
        """`idreg` / `hhreg`: the ID maps joined once to the person / household registry, so
        each table needs one join per ID instead of two. Built when first needed: after the
        registry tables of this delivery are final (they are linked first)."""
        if name in self._tables():
            return
        if name == "idreg":
            self._registry("reg_persons",
                           "SELECT person_key, household_key FROM committed_persons")
            self.con.execute(
                "CREATE TEMP TABLE idreg AS SELECT i.*, r.household_key, "
                "r.person_key IS NOT NULL AS known FROM idmap i "
                "LEFT JOIN reg_persons r ON r.person_key = i.person_key")
        else:
            self._registry("reg_households", "SELECT household_key FROM committed_households")
            self.con.execute(
                "CREATE TEMP TABLE hhreg AS SELECT h.*, g.household_key IS NOT NULL AS known "
                "FROM hhmap h LEFT JOIN reg_households g ON g.household_key = h.household_key")

    def _rules(self, t: Table) -> None:
        """work_<t>: every typed row with pseudonyms, the household from the registry, and its
        first failure in `_r` (NULL = accepted), `_c` (column) and `_d` (detail): the type
        stage's, then pandera's (set after the one pass by `_pandera`), then the rules'; then
        duplicates among the survivors."""
        con, name = self.con, t.name
        links_person = bool(t.person_column) and name != "persons"
        links_household = bool(t.household_column) and name != "households"
        joins, extra = [], []
        if t.person_column:
            ids = "idreg" if links_person else "idmap"
            if links_person:
                self._linked("idreg")
            joins.append(f"LEFT JOIN {ids} i ON i.raw = x.resident_id")
            extra += ["i.person_key", "i.reason AS _idr", "i.detail AS _idd",
                      "coalesce(i.legacy, false) AS _legacy"]
            if links_person:
                extra += ["i.household_key", "coalesce(i.known, false) AS _known"]
        else:
            extra += ["NULL::VARCHAR AS _idr", "NULL::VARCHAR AS _idd"]
        if t.household_column:
            if links_household:
                self._linked("hhreg")
            joins.append(f"LEFT JOIN {'hhreg' if links_household else 'hhmap'} h "
                         "ON h.raw = x.household_id")
            extra.append("h.household_key")
            if links_household:
                extra.append("coalesce(h.known, false) AS _hknown")
        day = f"DATE '{self.delivery_date.isoformat()}'"
        ev, kd = _q(t.event_date), _q(t.knowledge_date)
        rules = [  # (condition, reason, column, detail) in order
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

        def case(i: int) -> str:
            return "CASE " + " ".join(f"WHEN {r[0]} THEN {r[i]}" for r in rules) + " END"

        only_rules = ["_col", "_detail", "_idr", "_idd"] + (["_hknown"] if links_household else [])
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE work_{name} AS SELECT * EXCLUDE "
            f"({', '.join(only_rules)}), {case(1)} AS _r, {case(2)} AS _c, {case(3)} AS _d "
            f"FROM (SELECT x.*{''.join(', ' + e for e in extra)} FROM typed_{name} x "
            f"{' '.join(joins)})")
        for what in ("VIEW", "TABLE"):
            with contextlib.suppress(duckdb.CatalogException):
                con.execute(f"DROP {what} IF EXISTS typed_{name}")
        self._pandera(t)
        self._duplicates(t)
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
        if links_person:  # persons with a valid ID, and whether the registry has them
            con.execute(f"CREATE TEMP TABLE keys_{name} AS SELECT DISTINCT person_key, "
                        f"_known AS matched FROM work_{name} WHERE _r IS NULL "
                        "OR _r IN ('unknown_person', 'duplicate')")
            self.linkage[name] = self._persons([name])

    def _registry(self, name: str, committed: str) -> None:
        """Fall back to the committed registry when this delivery does not carry it."""
        if name not in self._tables():
            self.con.execute(f"CREATE TEMP TABLE {name} AS {committed}")

    def _duplicates(self, t: Table) -> None:
        """Keep the first row per primary key; later ones are exact or key duplicates."""
        key = ", ".join(_q("person_key" if c == t.person_column else c) for c in t.primary_key)
        values = [_q(c.name) for c in t.columns if c.name != t.person_column]
        if t.person_column:
            values.append("person_key")
        row = "hash(" + ", ".join(values) + ")"
        name = t.name
        # keys that repeat are rare: find them by aggregation (on a 64-bit hash of the key,
        # much cheaper than on the key; a collision only adds a candidate), rank only their
        # rows by the key itself
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE dup AS SELECT _line AS dl, first_line, "
            f"row_hash = first_hash AS exact FROM (SELECT _line, {row} AS row_hash, "
            f"first_value(_line) OVER w AS first_line, first_value({row}) OVER w AS first_hash,"
            f" row_number() OVER w AS rn FROM work_{name} WHERE _r IS NULL AND hash({key}) IN "
            f"(SELECT hash({key}) FROM work_{name} WHERE _r IS NULL GROUP BY 1 "
            f"HAVING count(*) > 1) WINDOW w AS (PARTITION BY {key} ORDER BY _line)) "
            f"WHERE rn > 1")
        if self.con.execute("SELECT count(*) FROM dup").fetchall()[0][0]:
            self.con.execute(
                f"UPDATE work_{name} SET _r = 'duplicate', _c = '{', '.join(t.primary_key)}', "
                "_d = CASE WHEN exact THEN 'exact duplicate of line ' ELSE "
                "'primary key repeats line ' END || first_line FROM dup WHERE _line = dl")

    def _persons(self, names: list[str]) -> dict:
        """Distinct persons in these tables and how many are in the person registry."""
        union = " UNION ALL ".join(f"SELECT * FROM keys_{n}" for n in names)
        persons, matched = self.con.execute(
            f"SELECT count(DISTINCT person_key), count(DISTINCT person_key) FILTER "
            f"(WHERE matched) FROM ({union})").fetchall()[0]
        return {"distinct_persons": int(persons), "matched_persons": int(matched)}

    def _tables(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT table_name FROM duckdb_tables()")
                .fetchall()}

    # --- commit ------------------------------------------------------------------------
    def _write_table(self, t: Table, tables_dir: Path) -> None:
        """Rejected rows into the ledger, accepted rows to `<t>.parquet`; frees work_<t>."""
        con = self.con
        self.say(f"writing {t.name}")
        con.execute(f"INSERT INTO ledger SELECT '{t.name}', _line, _r, _c, _d "
                    f"FROM work_{t.name} WHERE _r IS NOT NULL")
        sel = ", ".join(
            f"'{self.delivery_id}' AS _delivery_id" if c == "_delivery_id"
            else "_line AS _source_line" if c == "_source_line" else _q(c)
            for c, _ in stored_columns(t))
        legacy = "count(*) FILTER (WHERE _legacy)" if t.person_column else "0"
        self.accepted[t.name], self.legacy[t.name] = con.execute(
            f"SELECT count(*), {legacy} FROM work_{t.name} WHERE _r IS NULL").fetchall()[0]
        # zstd level 1: about half the CPU of the default level 3 on the big tables, for
        # files ~10% larger overall (100k city: attendance +45%, contributions -2%)
        con.execute(f"COPY (SELECT {sel} FROM work_{t.name} WHERE _r IS NULL) TO "
                    f"'{tables_dir / (t.name + '.parquet')}' "
                    "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)")
        if t.name not in REGISTRY_FIRST:  # the identity upsert reads only those
            con.execute(f"DROP TABLE work_{t.name}")

    def write(self, staging: Path) -> dict:
        """The ledger and the report into `staging` (tables are written by `validate`);
        returns the report."""
        con = self.con
        files = {s.table.name: s for s in self.files}
        ledger = con.execute("SELECT * FROM ledger ORDER BY tbl, line").df()
        out = pd.DataFrame({
            "delivery_id": self.delivery_id,
            "department": ledger["tbl"].map(lambda n: files[n].table.department),
            "file": ledger["tbl"].map(lambda n: files[n].relpath),
            "line": ledger["line"].astype("int64"),
            "reason": ledger["reason"], "column": ledger["column"], "detail": ledger["detail"],
        }, columns=LEDGER_COLUMNS)
        out.astype({c: "string" for c in LEDGER_COLUMNS if c != "line"}).to_parquet(
            staging / "rejects.parquet", index=False)
        return self._report(ledger)

    def _report(self, ledger: pd.DataFrame) -> dict:
        by_reason = ledger.groupby(["tbl", "reason"]).size()
        tables = []
        for src in self.files:
            name = src.table.name
            accepted = self.accepted[name]
            reasons = {r: int(n) for (tb, r), n in by_reason.items() if tb == name}
            link = self.linkage.get(name, {})
            tables.append({
                "table": name, "department": src.table.department, "file": src.relpath,
                "format": src.format, "encoding": src.encoding, "sha256": src.sha256,
                "rows_read": int(self.rows_read[name]), "accepted": int(accepted),
                "rejected": int(sum(reasons.values())), "rejected_by_reason": reasons,
                "legacy_ids_converted": int(self.legacy.get(name, 0)),
                "unmatched": reasons.get("unknown_person", 0),
                **{k: int(v) for k, v in link.items()},
                "match_rate": _rate(link),
            })
        departments = []
        for dept in dict.fromkeys(t["department"] for t in tables):
            rows = [t for t in tables if t["department"] == dept]
            persons = self._department_persons([t["table"] for t in rows])
            departments.append({
                "department": dept,
                **{k: sum(t[k] for t in rows) for k in ("rows_read", "accepted", "rejected",
                                                        "legacy_ids_converted", "unmatched")},
                **persons, "match_rate": _rate(persons),
            })
        return {
            "delivery_id": self.delivery_id,
            "delivery_date": self.delivery_date.isoformat(),
            "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "tables": tables, "departments": departments,
        }

    def _department_persons(self, names: list[str]) -> dict:
        """Distinct persons over a department's tables (before the unknown_person step)."""
        keyed = [n for n in names if n in self.linkage]
        return self._persons(keyed) if keyed else {}


def _rate(d: dict) -> float | None:
    n = d.get("distinct_persons")
    return round(d["matched_persons"] / n, 4) if n else None
