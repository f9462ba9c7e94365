"""`safetynet ingest DIR`: validate, link and pseudonymize one delivery into the offline store.

Pipeline (set-based: DuckDB for the bulk work, pandas only for chunks and distinct values):

1. whole files (`reading`): manifest, checksums, encoding, header; any problem raises
   `DeliveryError` before anything is written;
2. raw load: every column as text (Parquet: as stored), with its source line; malformed
   records -> 'malformed_row';
3. typed conversion in SQL, judging every value by its text: 'wrong_type', 'invalid_date'
   (`ingest_typed`);
4. pandera (`contracts.pandera_schema`, lazy) on the rows its checks, translated to SQL, flag:
   'missing_required', 'invalid_category', 'negative_amount', 'out_of_range'
   (`ingest_contract`);
5. IDs pseudonymized (`ingest_pseudonyms`), then the rules pandera cannot express
   (`ingest_rules`): resident IDs ('missing_id', 'malformed_id', 'invalid_id_check'; legacy
   15-digit IDs converted), 'future_date', 'knowledge_before_event', 'unknown_household',
   'unknown_person', then 'duplicate' among the rows that passed everything else;
6. commit (`ingest_commit`): accepted rows (each table as soon as it is checked), the reject
   ledger and report.json are written to `store/.staging-<id>/`, names and addresses are
   upserted into the identity table, and the staging directory is renamed to
   `store/deliveries/<id>/` in one step.

A row is rejected for the first problem found, in the order above; every input row is either
accepted or in the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from safetynet.config import Settings, get_settings

from . import reading
from .identity import upsert_identity
from .ingest_commit import LEDGER_DDL, build_report, write_ledger, write_table
from .ingest_pseudonyms import create_id_maps
from .ingest_rules import REGISTRY_FIRST, apply_rules
from .ingest_typed import create_typed
from .reading import DeliveryError, SourceFile
from .store import OfflineStore


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
            report = _commit(run, settings, directory, final)
        finally:
            con.close()
    return IngestResult(delivery_id, "committed", final, report)


def _commit(run: _Run, settings: Settings, directory: Path, final: Path) -> dict:
    """Check and write everything into a staging directory, upsert the identity table, and
    rename the staging directory to `final`: readers see all of the delivery or none."""
    staging = settings.store_dir / f".staging-{run.delivery_id}"
    shutil.rmtree(staging, ignore_errors=True)  # left over from a crashed run
    try:
        (staging / "tables").mkdir(parents=True)
        run.validate(staging / "tables")
        report = run.report(staging)
        report["directory"] = str(directory.resolve())
        (staging / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
        run.say("updating the identity table")
        upsert_identity(settings.identity_path, run.con)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(final)  # the commit
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _manifest_date(manifest: dict) -> dt.date | None:
    value = manifest.get("delivery_date") or manifest.get("extract_date")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise DeliveryError("manifest.json", f"delivery_date {value!r} is not a date") from exc


@dataclass
class _Run:
    """One ingest: a DuckDB connection with raw_, typed_ and work_ tables, and per table the
    counts its report needs (rows_read, accepted, legacy, linkage)."""

    con: duckdb.DuckDBPyConnection
    files: list[SourceFile]
    delivery_id: str
    delivery_date: dt.date
    secret: bytes
    store: OfflineStore
    say: Callable[[str], None]
    counts: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        order = {n: i for i, n in enumerate(REGISTRY_FIRST)}
        self.files = sorted(self.files, key=lambda f: order.get(f.table.name, len(order)))
        self.counts = {s.table.name: {} for s in self.files}
        self.con.execute(LEDGER_DDL)
        self.store.create_views(self.con, prefix="committed_")

    def load(self) -> None:
        """Steps 1-2: raw_<t> per file; raises `DeliveryError` on a row count that differs
        from the manifest's."""
        workdir = Path(self.con.execute(
            "SELECT current_setting('temp_directory')").fetchall()[0][0]).parent
        for src in self.files:
            self.say(f"reading {src.relpath}")
            n = reading.load_raw(self.con, src, f"raw_{src.table.name}", workdir)
            want = src.declared.get("rows")
            if want is not None and int(want) != n:
                raise DeliveryError(src.relpath, f"{n} data rows but manifest.json declares "
                                    f"{want} (file truncated or changed)")
            self.counts[src.table.name]["rows_read"] = n

    def validate(self, tables_dir: Path) -> None:
        """Steps 3-5 and each table's part of 6: accepted rows go to `tables_dir` as soon as
        a table is done, so only one table's work (and the registries) is held at a time."""
        id_exprs: dict[str, dict[str, str]] = {}
        for src in self.files:
            name = src.table.name
            self.say(f"validating {src.relpath}")
            self.con.execute(f"INSERT INTO ledger SELECT '{name}', _line, 'malformed_row', "
                             f"NULL, detail FROM raw_{name}_malformed")
            id_exprs[name] = create_typed(self.con, src)
        self.say("normalizing and pseudonymizing IDs")
        create_id_maps(self.con, self.files, id_exprs, self.secret)
        for src in self.files:
            t, c = src.table, self.counts[src.table.name]
            self.say(f"checking and linking {src.relpath}")
            c["linkage"] = apply_rules(self.con, t, self.delivery_date)
            self.say(f"writing {t.name}")
            c["accepted"], c["legacy"] = write_table(self.con, t, tables_dir, self.delivery_id)

    def report(self, staging: Path) -> dict:
        """The reject ledger into `staging`; returns the report (`build_report`)."""
        ledger = write_ledger(self.con, self.files, self.delivery_id, staging)
        return build_report(self.con, self.files, ledger, self.counts, self.delivery_id,
                            self.delivery_date)
