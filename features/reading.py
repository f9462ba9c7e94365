"""Reading a delivery: find its files, check manifest, encoding and header, load raw strings.

Everything here is about whole files. A problem that makes a file unusable raises
`DeliveryError` naming the file, before anything is written. Row-level problems are left to
`safetynet.features.ingest`, which puts them in the reject ledger.

Raw tables are loaded into DuckDB with the contract columns plus `_line`: the 1-based line
of the record in the source file, header = line 1 (for Parquet: row number + 1, as if the file
had a header). Lines count records as DuckDB's CSV reader does: a blank line or a line break
inside a quoted field does not start a new line number. CSV columns are VARCHAR; Parquet
columns keep their stored types, and the typed stage treats each value exactly as its text
(`CAST(value AS VARCHAR)`) would be treated.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from safetynet.contracts import TABLES, Table

CHUNK = 16 * 1024 * 1024
ENCODING_NAMES = {  # how manifests may spell encodings -> Python codec
    "utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8",
    "gbk": "gbk", "cp936": "gbk", "gb2312": "gbk", "gb18030": "gb18030",
}


class DeliveryError(Exception):
    """A whole-file problem: the delivery cannot be ingested; nothing was written."""

    def __init__(self, file: str, problem: str):
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


@dataclass
class SourceFile:
    """One contract table's file in a delivery."""

    table: Table
    path: Path
    relpath: str  # relative to the delivery directory, '/'-separated
    format: str  # 'csv' or 'parquet'
    sha256: str = ""
    encoding: str | None = None  # detected encoding (CSV only)
    declared: dict = field(default_factory=dict)  # the manifest's entry for this file


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def load_manifest(directory: Path) -> dict:
    """The delivery's manifest.json as {'files': {relpath: entry}, ...}; {} if there is none."""
    path = directory / "manifest.json"
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeliveryError("manifest.json", f"not valid JSON ({exc})") from exc
    files = doc.get("files", {})
    if isinstance(files, list):  # also accept a list of entries with a 'path' or 'file'
        files = {str(e.get("path") or e.get("file")): e for e in files}
    doc["files"] = {str(k).replace("\\", "/"): v for k, v in files.items()}
    return doc


def find_files(directory: Path, fmt: str, manifest: dict) -> list[SourceFile]:
    """The contract files of a delivery.

    With a manifest, the delivery is the contract files it lists (a department may deliver
    only its own tables) and every listed file must exist. Without one, every contract
    table must be present. `fmt` is 'auto', 'csv' or 'parquet'.
    """
    if not directory.is_dir():
        raise DeliveryError(str(directory), "delivery directory does not exist")
    listed = manifest.get("files", {})
    found: list[SourceFile] = []
    for t in TABLES:
        stem = f"{t.department}/{t.name}"
        candidates = [f for f in ("csv", "parquet") if fmt in ("auto", f)]
        present = [f for f in candidates if (directory / f"{stem}.{f}").exists()]
        declared = [f for f in candidates if f"{stem}.{f}" in listed]
        if len(present) > 1:
            raise DeliveryError(f"{stem}.*", "both a CSV and a Parquet file; deliver one "
                                "or pass --format")
        if listed:
            if not declared:
                continue
            missing = [f for f in declared if f not in present]
            if missing:
                raise DeliveryError(f"{stem}.{missing[0]}", "listed in manifest.json but missing")
        elif not present:
            raise DeliveryError(f"{stem}.{candidates[0]}", "missing file (every contract "
                                "table must be delivered when there is no manifest.json)")
        f = present[0]
        rel = f"{stem}.{f}"
        found.append(SourceFile(t, directory / rel, rel, f, declared=dict(listed.get(rel, {}))))
    if not found:
        raise DeliveryError(str(directory), "no contract table files found")
    return found


def check_file(src: SourceFile) -> None:
    """Checksum, size, encoding and (for CSV) header of one file; raises DeliveryError."""
    if src.path.stat().st_size == 0:
        raise DeliveryError(src.relpath, "empty file (no header row)")
    src.sha256 = sha256_file(src.path)
    want = src.declared.get("sha256")
    if want and want.lower() != src.sha256:
        raise DeliveryError(src.relpath, "SHA-256 checksum does not match manifest.json "
                            "(file truncated or changed after the manifest was written)")
    if src.format == "csv":
        src.encoding = detect_encoding(src)
        check_header(src)


def detect_encoding(src: SourceFile) -> str:
    """'utf-8' or 'gb18030' (a superset of GBK): strict UTF-8 first, then GB18030.

    A declared encoding in the manifest is checked: a GBK file declared as UTF-8 (or the
    reverse) is an error, because its text columns would otherwise be misread.
    """
    declared_raw = src.declared.get("encoding")
    declared = None
    if declared_raw:
        declared = ENCODING_NAMES.get(str(declared_raw).lower().replace("_", "-"))
        if declared is None:
            raise DeliveryError(src.relpath, f"manifest.json declares unknown encoding "
                                f"{declared_raw!r} (expected UTF-8 or GBK)")
    utf8 = _decodes(src.path, "utf-8")
    gbk = utf8 or _decodes(src.path, "gb18030")
    if declared == "utf-8" and not utf8:
        hint = " (it decodes as GBK)" if gbk else ""
        raise DeliveryError(src.relpath, f"declared as UTF-8 in manifest.json but is not valid "
                            f"UTF-8{hint}; fix the declaration or re-export the file as UTF-8")
    if declared in ("gbk", "gb18030"):
        if not gbk:
            raise DeliveryError(src.relpath, f"declared as {declared_raw} in manifest.json but "
                                "is not valid GBK/GB18030")
        return "gb18030"
    if utf8:
        return "utf-8"
    if gbk:
        return "gb18030"
    raise DeliveryError(src.relpath, "cannot be decoded as UTF-8 or GBK/GB18030")


def _decodes(path: Path, encoding: str) -> bool:
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as fh:
            while block := fh.read(CHUNK):
                dec.decode(block)
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def read_header(src: SourceFile) -> list[str]:
    with open(src.path, "rb") as fh:
        first = fh.readline(1 << 20)
    text = first.decode(src.encoding or "utf-8").lstrip("\ufeff")
    if not text.strip():
        raise DeliveryError(src.relpath, "empty file (no header row)")
    return [c.strip() for c in next(csv.reader(io.StringIO(text)))]


def check_header(src: SourceFile) -> None:
    check_columns(src, read_header(src))


def check_columns(src: SourceFile, columns: list[str]) -> None:
    want = src.table.column_names
    missing = [c for c in want if c not in columns]
    extra = [c for c in columns if c not in want]
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if missing or extra or dup:
        parts = []
        if missing:
            parts.append("missing column(s) " + ", ".join(missing))
        if extra:
            parts.append("unexpected column(s) " + ", ".join(extra))
        if dup:
            parts.append("repeated column(s) " + ", ".join(dup))
        raise DeliveryError(src.relpath, "; ".join(parts) + " (contract columns: "
                            + ", ".join(want) + ")")


def load_raw(con: duckdb.DuckDBPyConnection, src: SourceFile, name: str, workdir: Path) -> int:
    """Create DuckDB table or view `name` (_line BIGINT, the contract columns: VARCHAR for
    CSV, the stored types for Parquet).

    Returns the number of records read, including structurally malformed ones, which are
    stored in table `<name>_malformed` (_line, detail).
    """
    if src.format == "parquet":
        return _load_parquet(con, src, name)
    path = src.path
    if src.encoding != "utf-8":  # DuckDB reads UTF-8 only: transcode to a private copy
        path = workdir / (src.relpath.replace("/", "__") + ".utf8.csv")
        _transcode(src.path, src.encoding or "gb18030", path)
    header = read_header(src)
    cols = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in header) + "}"
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name}_scan AS SELECT * FROM read_csv(?, "
            f"auto_detect=false, header=true, columns={cols}, delim=',', quote='\"', "
            "escape='\"', store_rejects=true, strict_mode=true, encoding='utf-8')",
            [str(path)],
        )
    except duckdb.Error as exc:
        raise DeliveryError(src.relpath, f"unreadable CSV ({str(exc).splitlines()[0]})") from exc
    errors = con.execute(
        "SELECT line, any_value(error_type) AS error_type, any_value(error_message) "
        "FROM reject_errors GROUP BY line ORDER BY line"
    ).fetchall()
    good = con.execute(f"SELECT count(*) FROM {name}_scan").fetchall()[0][0]
    total = good + len(errors)
    bad_lines = np.array([e[0] for e in errors], dtype=np.int64)
    if errors and bad_lines[-1] == total + 1 and not _ends_with_newline(src.path):
        raise DeliveryError(src.relpath, f"truncated: the last line ({total + 1}) is "
                            "incomplete and the file does not end with a line break")
    select = ", ".join(f'"{c}"' for c in src.table.column_names)
    if errors:  # the k-th good record sits on the k-th line that is not a rejected one
        lines = np.setdiff1d(np.arange(2, total + 2, dtype=np.int64), bad_lines)
        con.register(f"{name}_lines", pd.DataFrame({"_rid": np.arange(good), "_line": lines}))
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT l._line, {select} FROM "
            f"(SELECT rowid AS _rid, * FROM {name}_scan) s JOIN {name}_lines l USING (_rid)"
        )
        con.unregister(f"{name}_lines")
        con.execute(f"DROP TABLE {name}_scan")
    else:  # no copy: a view numbering the scanned rows in file order
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS "
                    f"SELECT rowid + 2 AS _line, {select} FROM {name}_scan")
    malformed = pd.DataFrame({
        "_line": bad_lines,
        "detail": [f"{e[1].lower()}: {e[2]}" for e in errors],
    })
    con.register(f"{name}_malformed_df", malformed)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_malformed AS "
                f"SELECT * FROM {name}_malformed_df")
    con.unregister(f"{name}_malformed_df")
    return total


def _load_parquet(con: duckdb.DuckDBPyConnection, src: SourceFile, name: str) -> int:
    try:
        cols = [r[0] for r in con.execute(
            "SELECT name FROM parquet_schema(?) WHERE num_children IS NULL "
            "OR num_children = 0", [str(src.path)]).fetchall()]
    except duckdb.Error as exc:
        raise DeliveryError(src.relpath, f"unreadable Parquet file "
                            f"({str(exc).splitlines()[0]})") from exc
    check_columns(src, cols)
    select = ", ".join(f'"{c}"' for c in src.table.column_names)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT file_row_number + 2 AS _line, "
            f"{select} FROM read_parquet({_sql_str(src.path)}, file_row_number=true)")
        n = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    except duckdb.Error as exc:
        raise DeliveryError(src.relpath, f"unreadable Parquet file "
                            f"({str(exc).splitlines()[0]})") from exc
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_malformed "
                "(_line BIGINT, detail VARCHAR)")
    return n


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) in (b"\n", b"\r")


def _transcode(src: Path, encoding: str, dst: Path) -> None:
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open(src, "rb") as fin, open(dst, "w", encoding="utf-8", newline="") as fout:
        while block := fin.read(CHUNK):
            fout.write(dec.decode(block))
        fout.write(dec.decode(b"", final=True))


def workdir(base: Path) -> tempfile.TemporaryDirectory:
    """A private scratch directory under `base` (home), removed when closed."""
    base.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".ingest-tmp-", dir=base)
