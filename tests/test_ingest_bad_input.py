"""The bad-input corpus: broken deliveries, written into tmp_path by small readable makers.

Whole-file problems must stop the ingest with a message naming the file and the problem and
leave the store byte-for-byte unchanged; row problems must land in the reject ledger.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from ingest_fixture import valid_tables, write_delivery
from test_ingest_pipeline import settings, store_hash  # noqa: F401  (fixture)
from typer.testing import CliRunner

from safetynet.cli import app
from safetynet.config import Settings
from safetynet.features.ingest import ingest
from safetynet.features.reading import DeliveryError

CLAIMS = "medical_insurance/claims.csv"


# --- whole-file problems: (maker, file named in the message, words in the message) ---------


def truncated_file(d: Path) -> None:
    """The last line is cut off mid-row; the manifest still has the full file's checksum."""
    write_delivery(d, valid_tables())
    p = d / CLAIMS
    p.write_bytes(p.read_bytes()[:-40])


def truncated_without_manifest(d: Path) -> None:
    write_delivery(d, valid_tables(), manifest=False)
    p = d / CLAIMS
    p.write_bytes(p.read_bytes()[:-40])


def gbk_declared_as_utf8(d: Path) -> None:
    write_delivery(d, valid_tables(), encoding="gbk", declared="utf-8")


def undecodable(d: Path) -> None:
    write_delivery(d, valid_tables(), manifest=False)
    p = d / "civil_affairs/persons.csv"
    p.write_bytes(p.read_bytes() + b"\xff\xfe\xff,\x80\x80\n")


def wrong_column_names(d: Path) -> None:
    tables = valid_tables()
    tables["claims"] = tables["claims"].rename(columns={"total_cost": "cost"})
    write_delivery(d, tables)


def missing_column(d: Path) -> None:
    tables = valid_tables()
    tables["contributions"] = tables["contributions"].drop(columns="month")
    write_delivery(d, tables)


def empty_file(d: Path) -> None:
    write_delivery(d, valid_tables())
    (d / CLAIMS).write_bytes(b"")
    _refresh_manifest(d)


def missing_file(d: Path) -> None:
    write_delivery(d, valid_tables())
    (d / CLAIMS).unlink()


def missing_file_without_manifest(d: Path) -> None:
    write_delivery(d, valid_tables(), manifest=False)
    (d / CLAIMS).unlink()


def unreadable_parquet(d: Path) -> None:
    write_delivery(d, valid_tables(), fmt="parquet", manifest=False)
    (d / "medical_insurance/claims.parquet").write_bytes(b"PAR1 this is not parquet")


def wrong_row_count(d: Path) -> None:
    write_delivery(d, valid_tables())
    doc = json.loads((d / "manifest.json").read_text())
    doc["files"][CLAIMS]["rows"] += 5
    (d / "manifest.json").write_text(json.dumps(doc))


def _refresh_manifest(d: Path) -> None:
    import hashlib

    doc = json.loads((d / "manifest.json").read_text())
    for rel, entry in doc["files"].items():
        entry["sha256"] = hashlib.sha256((d / rel).read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(doc))


WHOLE_FILE = [
    (truncated_file, CLAIMS, "checksum"),
    (truncated_without_manifest, CLAIMS, "truncated"),
    (gbk_declared_as_utf8, "civil_affairs/households.csv", "declared as UTF-8"),
    (undecodable, "civil_affairs/persons.csv", "cannot be decoded"),
    (wrong_column_names, CLAIMS, "missing column(s) total_cost; unexpected column(s) cost"),
    (missing_column, "hrss/contributions.csv", "missing column(s) month"),
    (empty_file, CLAIMS, "empty file"),
    (missing_file, CLAIMS, "missing"),
    (missing_file_without_manifest, CLAIMS, "missing file"),
    (unreadable_parquet, "medical_insurance/claims.parquet", "unreadable Parquet"),
    (wrong_row_count, CLAIMS, "manifest.json declares"),
]


@pytest.fixture(scope="module")
def committed_home(tmp_path_factory) -> Path:
    """A home with one committed delivery, built once and copied into each test."""
    home = tmp_path_factory.mktemp("committed") / "home"
    src = write_delivery(home.parent / "good", valid_tables(2))
    ingest(src, Settings(home=home))
    return home


@pytest.mark.parametrize(("make", "file", "words"), WHOLE_FILE,
                         ids=[m.__name__ for m, _, _ in WHOLE_FILE])
def test_whole_file_problem_stops_ingest_and_leaves_store_unchanged(settings, tmp_path,  # noqa: F811
                                                                   committed_home, make, file,
                                                                   words):
    shutil.copytree(committed_home, settings.home)  # a non-empty store
    before = store_hash(settings)
    assert before != "absent"
    make(tmp_path / "bad")
    with pytest.raises(DeliveryError) as err:
        ingest(tmp_path / "bad", settings)
    assert err.value.file == file
    assert words in str(err.value)
    assert store_hash(settings) == before
    assert not list(settings.home.glob(".ingest-tmp-*"))


def test_cli_reports_whole_file_problem_on_stderr_with_exit_2(settings, tmp_path):  # noqa: F811
    wrong_column_names(tmp_path / "bad")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "bad"), "--quiet"])
    assert result.exit_code == 2
    assert "medical_insurance/claims.csv" in result.stderr
    assert "missing column(s) total_cost" in result.stderr
    assert store_hash(settings) == "absent"


# --- row problems: (edit of the valid tables, file, reason, words in the detail) -------------


def swapped_date_format(t):
    t["claims"].loc[1, "claim_date"] = "05/03/2024"  # DD/MM/YYYY


def duplicate_primary_key(t):
    t["claims"].loc[3, "claim_id"] = t["claims"].loc[1, "claim_id"]


def exact_duplicate_row(t):
    t["pensions"] = pd.concat([t["pensions"], t["pensions"].iloc[[0]]], ignore_index=True)


def negative_cost(t):
    t["claims"].loc[2, "total_cost"] = "-120.5"


def bad_check_digit(t):
    rid = t["claims"].loc[0, "resident_id"]
    t["claims"].loc[0, "resident_id"] = rid[:17] + ("1" if rid[17] != "1" else "2")


def future_event_date(t):
    t["claims"].loc[0, "claim_date"] = "2025-02-01"


def future_knowledge_date(t):
    t["assistance"].loc[0, "knowledge_date"] = "2025-01-15"


def malformed_row(t):
    t["claims"].loc[0, "diagnosis_group"] = "cancer"  # made malformed after writing


def invalid_category(t):
    t["claims"].loc[0, "care_type"] = "day_care"


ROW_PROBLEMS = [
    (swapped_date_format, CLAIMS, 3, "invalid_date", "05/03/2024 is not a date"),
    (duplicate_primary_key, CLAIMS, 5, "duplicate", "primary key repeats line 3"),
    (exact_duplicate_row, "hrss/pensions.csv", 14, "duplicate", "exact duplicate of line 2"),
    (negative_cost, CLAIMS, 4, "negative_amount", "-120.5"),
    (bad_check_digit, CLAIMS, 2, "invalid_id_check", "check character"),
    (future_event_date, CLAIMS, 2, "future_date", "after the delivery date 2024-12-31"),
    (future_knowledge_date, "civil_affairs/assistance.csv", 2, "future_date", "2025-01-15"),
    (invalid_category, CLAIMS, 2, "invalid_category", "day_care"),
]


@pytest.mark.parametrize(("edit", "file", "line", "reason", "words"), ROW_PROBLEMS,
                         ids=[e.__name__ for e, *_ in ROW_PROBLEMS])
def test_row_problem_goes_to_the_ledger(settings, tmp_path, edit, file, line, reason,  # noqa: F811
                                        words):
    tables = valid_tables()
    edit(tables)
    res = ingest(write_delivery(tmp_path / "in", tables), settings)
    rej = pd.read_parquet(res.path / "rejects.parquet")
    assert len(rej) == 1, rej.to_dict("records")
    row = rej.iloc[0]
    assert (row["file"], row["line"], row["reason"]) == (file, line, reason)
    assert words in row["detail"]


def test_row_with_extra_field_is_a_malformed_row(settings, tmp_path):  # noqa: F811
    d = write_delivery(tmp_path / "in", valid_tables(), manifest=False)
    p = d / CLAIMS
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].rstrip("\n") + ",surplus\n"
    p.write_text("".join(lines), encoding="utf-8")
    res = ingest(d, settings, delivery_date=pd.Timestamp("2024-12-31").date())
    rej = pd.read_parquet(res.path / "rejects.parquet")
    assert rej[["file", "line", "reason"]].values.tolist() == [[CLAIMS, 4, "malformed_row"]]
    accepted = pd.read_parquet(res.path / "tables" / "claims.parquet")
    assert 4 not in set(accepted["_source_line"]) and len(accepted) == len(lines) - 2
