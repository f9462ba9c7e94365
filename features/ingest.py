"""`safetynet ingest DIR`: validate, link and pseudonymize one delivery into the offline store.

Pipeline (set-based: DuckDB for the bulk work, pandas only for chunks and distinct values):

1. whole files (`reading`): manifest, checksums, encoding, header; any problem raises
   `DeliveryError` before anything is written;
2. raw load: every column as text, with its source line; malformed records -> 'malformed_row';
3. typed conversion in SQL: 'wrong_type', 'invalid_date';
4. pandera (`contracts.pandera_schema`, lazy) on chunks: 'missing_required',
   'invalid_category', 'negative_amount', 'out_of_range';
5. rules pandera cannot express: resident IDs ('missing_id', 'malformed_id',
   'invalid_id_check'; legacy 15-digit IDs converted), 'future_date',
   'knowledge_before_event', 'duplicate', 'unknown_household', 'unknown_person';
6. commit: accepted rows, the reject ledger and report.json are written to
   `store/.staging-<id>/`, names and addresses are upserted into the identity table, and the
   staging directory is renamed to `store/deliveries/<id>/` in one step.

A row is rejected for the first problem found, in the order above; every input row is either
accepted or in the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from safetynet.config import Settings, get_settings
from safetynet.contracts import Table, pandera_schema

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
_ARROW_TO_PANDAS = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(),
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
    manifest's `delivery_date`, else today. Raises `DeliveryError` for whole-file problems.
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
                                     "preserve_insertion_order": True})
        try:
            run = _Run(con, files, delivery_id, ddate, secret, store, say)
            run.load()  # last step that may raise DeliveryError
            run.validate()
            staging = settings.store_dir / f".staging-{delivery_id}"
            shutil.rmtree(staging, ignore_errors=True)  # left over from a crashed run
            try:
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
    value = manifest.get("delivery_date")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise DeliveryError("manifest.json", f"delivery_date {value!r} is not a date") from exc


def _q(name: str) -> str:
    return '"' + name + '"'


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

    def validate(self) -> None:
        for src in self.files:
            t = src.table
            self.say(f"validating {src.relpath}")
            self.con.execute(f"INSERT INTO ledger SELECT '{t.name}', _line, 'malformed_row', "
                             f"NULL, detail FROM raw_{t.name}_malformed")
            self._typed(t)
            self._pandera(t)
        self._pseudonyms()
        for src in self.files:
            self.say(f"linking {src.relpath}")
            self._rules(src.table)

    def _typed(self, t: Table) -> None:
        """Typed columns plus the first conversion failure per row (_reason, _col, _detail)."""
        exprs, fails = [], []
        for c in t.columns:
            v = f"NULLIF(trim({_q(c.name)}), '')"
            typed = {
                "date": f"CASE WHEN regexp_full_match({v}, '\\d{{4}}-\\d{{2}}-\\d{{2}}"
                        f"( 00:00:00(\\.0+)?)?') THEN try_strptime(left({v}, 10), '%Y-%m-%d')"
                        "::DATE END",
                "int": f"CASE WHEN isfinite(try_cast({v} AS DOUBLE)) AND try_cast({v} AS DOUBLE)"
                       f" = round(try_cast({v} AS DOUBLE)) THEN try_cast({v} AS DOUBLE)::BIGINT"
                       " END",
                "float": f"CASE WHEN isfinite(try_cast({v} AS DOUBLE)) THEN "
                         f"try_cast({v} AS DOUBLE) END",
                "bool": f"CASE WHEN lower({v}) IN ('true', 't', '1', 'yes', 'y') THEN true "
                        f"WHEN lower({v}) IN ('false', 'f', '0', 'no', 'n') THEN false END",
            }.get(c.kind, v)
            exprs.append(f"{typed} AS {_q(c.name)}")
            if c.kind in ("date", "int", "float", "bool"):
                reason = "invalid_date" if c.kind == "date" else "wrong_type"
                want = {"date": "a date (YYYY-MM-DD)", "int": "a whole number",
                        "float": "a number", "bool": "true or false"}[c.kind]
                shown = "" if c.personal else f"'||left({v}, 40)||' "
                fails.append((f"{v} IS NOT NULL AND ({typed}) IS NULL", reason, c.name,
                              f"'value {shown}is not {want}'"))
        case = lambda i: "CASE " + " ".join(  # noqa: E731
            f"WHEN {cond} THEN {f[i] if i == 3 else repr(f[i])}"
            for f in fails for cond in [f[0]]) + " END" if fails else "NULL"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE typed_{t.name} AS SELECT _line, "
            f"{case(1)} AS _reason, {case(2)} AS _col, {case(3)} AS _detail, "
            f"{', '.join(exprs)} FROM raw_{t.name}")
        self.con.execute(f"DROP TABLE raw_{t.name}")
        self.con.execute(f"INSERT INTO ledger SELECT '{t.name}', _line, _reason, _col, _detail "
                         f"FROM typed_{t.name} WHERE _reason IS NOT NULL")
        self.con.execute(f"DELETE FROM typed_{t.name} WHERE _reason IS NOT NULL")

    def _pandera(self, t: Table) -> None:
        """Contract checks with pandera on chunks; failures go to the ledger by line."""
        import pandera.errors

        schema = pandera_schema(t)
        cols = ", ".join(f"CAST({_q(c.name)} AS TIMESTAMP_NS) AS {_q(c.name)}"
                         if c.kind == "date" else _q(c.name) for c in t.columns)
        reader = self.con.sql(f"SELECT _line, {cols} FROM typed_{t.name}") \
            .to_arrow_reader(PANDERA_CHUNK)
        bad: list[pd.DataFrame] = []
        for batch in reader:
            frame = batch.to_pandas(types_mapper=_ARROW_TO_PANDAS.get).set_index("_line")
            try:
                schema.validate(frame, lazy=True)
            except pandera.errors.SchemaErrors as exc:
                bad.append(self._failures(t, schema, exc.failure_cases))
        if bad:
            df = pd.concat(bad).sort_values(["line", "order"]).drop_duplicates("line")
            df = df.assign(tbl=t.name)[["tbl", "line", "reason", "column", "detail"]]
            self.con.register("pandera_bad", df)
            self.con.execute("INSERT INTO ledger SELECT * FROM pandera_bad")
            self.con.unregister("pandera_bad")
            self.con.execute(f"DELETE FROM typed_{t.name} WHERE _line IN "
                             f"(SELECT line FROM ledger WHERE tbl = '{t.name}')")

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
        """Distinct IDs -> person_key / household_key mapping tables (`idmap`, `hhmap`)."""
        self.say("normalizing and pseudonymizing IDs")
        person = [f"SELECT DISTINCT resident_id AS raw FROM typed_{s.table.name}"
                  for s in self.files if s.table.person_column]
        raw = self.con.execute(" UNION ".join(person)).df()["raw"] if person \
            else pd.Series([], dtype="string")
        self.con.register("idmap_df", id_map(raw, self.secret))
        self.con.execute("CREATE TEMP TABLE idmap AS SELECT * FROM idmap_df")
        self.con.unregister("idmap_df")
        hh = [f"SELECT DISTINCT household_id AS raw FROM typed_{s.table.name}"
              for s in self.files if s.table.household_column]
        raw = self.con.execute(" UNION ".join(hh)).df()["raw"] if hh \
            else pd.Series([], dtype="string")
        self.con.register("hhmap_df", household_map(raw, self.secret))
        self.con.execute("CREATE TEMP TABLE hhmap AS SELECT * FROM hhmap_df")
        self.con.unregister("hhmap_df")

    def _reject(self, t: Table, where: str, reason: str, column: str | None,
                detail: str) -> None:
        """Move rows of work_<t> matching `where` to the ledger.

        `reason` and `detail` are SQL expressions (quote literals).
        """
        col = "NULL" if column is None else repr(column)
        self.con.execute(f"INSERT INTO ledger SELECT '{t.name}', _line, {reason}, {col}, "
                         f"{detail} FROM work_{t.name} WHERE {where}")
        self.con.execute(f"DELETE FROM work_{t.name} WHERE {where}")

    def _rules(self, t: Table) -> None:
        con, name = self.con, t.name
        joins, extra = [], []
        if t.person_column:
            joins.append("LEFT JOIN idmap i ON i.raw = x.resident_id")
            extra += ["i.person_key", "i.reason AS _id_reason", "i.detail AS _id_detail",
                      "coalesce(i.legacy, false) AS _legacy"]
        if t.household_column:
            joins.append("LEFT JOIN hhmap h ON h.raw = x.household_id")
            extra.append("h.household_key")
        con.execute(f"CREATE OR REPLACE TEMP TABLE work_{name} AS SELECT x.* EXCLUDE "
                    f"(_reason, _col, _detail){''.join(', ' + e for e in extra)} "
                    f"FROM typed_{name} x {' '.join(joins)}")
        con.execute(f"DROP TABLE typed_{name}")
        if t.person_column:
            self._reject(t, "_id_reason IS NOT NULL", "_id_reason", t.person_column,
                         "_id_detail")
            self.legacy[name] = con.execute(
                f"SELECT count(*) FROM work_{name} WHERE _legacy").fetchall()[0][0]
        day = f"DATE '{self.delivery_date.isoformat()}'"
        for col in dict.fromkeys([t.event_date, t.knowledge_date]):
            self._reject(t, f"{_q(col)} > {day}", "'future_date'", col,
                         f"'value '||{_q(col)}||' is after the delivery date "
                         f"{self.delivery_date.isoformat()}'")
        if t.event_date != t.knowledge_date:
            self._reject(t, f"{_q(t.knowledge_date)} < {_q(t.event_date)}",
                         "'knowledge_before_event'", t.knowledge_date,
                         f"'known '||{_q(t.knowledge_date)}||' before the event date '||"
                         f"{_q(t.event_date)}")
        self._duplicates(t)
        self._link(t)

    def _duplicates(self, t: Table) -> None:
        key = [("person_key" if c == t.person_column else c) for c in t.primary_key]
        values = [c.name for c in t.columns if c.name != t.person_column]
        if t.person_column:
            values.append("person_key")
        row = "hash(" + ", ".join(_q(c) for c in values) + ")"
        part = ", ".join(_q(c) for c in key)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE dup AS SELECT _line AS dl, first_line, "
            f"row_hash = first_hash AS exact FROM (SELECT _line, {row} AS row_hash, "
            f"first_value(_line) OVER w AS first_line, first_value({row}) OVER w AS first_hash,"
            f" row_number() OVER w AS rn FROM work_{t.name} WINDOW w AS (PARTITION BY {part} "
            f"ORDER BY _line)) WHERE rn > 1")
        self._reject(
            t, "_line IN (SELECT dl FROM dup)", "'duplicate'", ", ".join(t.primary_key),
            "(SELECT CASE WHEN exact THEN 'exact duplicate of line ' ELSE "
            "'primary key repeats line ' END || first_line FROM dup WHERE dl = _line)")

    def _link(self, t: Table) -> None:
        con, name = self.con, t.name
        if name == "households":
            con.execute("CREATE TEMP TABLE reg_households AS SELECT household_key FROM "
                        "work_households UNION SELECT household_key FROM committed_households")
        if t.household_column and name != "households":
            if "reg_households" not in self._tables():
                con.execute("CREATE TEMP TABLE reg_households AS "
                            "SELECT household_key FROM committed_households")
            self._reject(t, "household_key NOT IN (SELECT household_key FROM reg_households)",
                         "'unknown_household'", t.household_column,
                         "'household registry number not in the household registry'")
        if name == "persons":
            con.execute(
                "CREATE TEMP TABLE reg_persons AS SELECT person_key, household_key FROM "
                "(SELECT person_key, household_key, knowledge_date, 1 AS fresh "
                "FROM work_persons UNION ALL SELECT person_key, household_key, knowledge_date, "
                "0 FROM committed_persons) QUALIFY row_number() OVER (PARTITION BY person_key "
                "ORDER BY knowledge_date DESC, fresh DESC) = 1")
        if t.person_column and name != "persons":
            if "reg_persons" not in self._tables():
                con.execute("CREATE TEMP TABLE reg_persons AS "
                            "SELECT person_key, household_key FROM committed_persons")
            con.execute(f"CREATE TEMP TABLE keys_{name} AS SELECT DISTINCT person_key, "
                        f"person_key IN (SELECT person_key FROM reg_persons) AS matched "
                        f"FROM work_{name}")
            self.linkage[name] = self._persons([name])
            self._reject(t, "person_key NOT IN (SELECT person_key FROM reg_persons)",
                         "'unknown_person'", t.person_column,
                         "'resident ID not in the person registry'")
            con.execute(f"CREATE OR REPLACE TEMP TABLE work_{name} AS SELECT w.*, "
                        f"r.household_key FROM work_{name} w JOIN reg_persons r "
                        f"USING (person_key)")

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
    def write(self, staging: Path) -> dict:
        """Accepted tables, the ledger and the report into `staging`; returns the report."""
        (staging / "tables").mkdir(parents=True)
        con = self.con
        for src in self.files:
            t = src.table
            self.say(f"writing {t.name}")
            sel = ", ".join(
                f"'{self.delivery_id}' AS _delivery_id" if c == "_delivery_id"
                else "_line AS _source_line" if c == "_source_line" else _q(c)
                for c, _ in stored_columns(t))
            con.execute(f"COPY (SELECT {sel} FROM work_{t.name} ORDER BY _line) TO "
                        f"'{staging / 'tables' / (t.name + '.parquet')}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
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
            accepted = self.con.execute(f"SELECT count(*) FROM work_{name}").fetchall()[0][0]
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
