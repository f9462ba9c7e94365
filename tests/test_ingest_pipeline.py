"""Ingest of valid and partly invalid deliveries: counts, linkage, pseudonyms, idempotency."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from ingest_fixture import person_id, valid_tables, write_delivery
from typer.testing import CliRunner

from safetynet.cli import app
from safetynet.config import Settings, get_settings
from safetynet.contracts import TABLES
from safetynet.features.ingest import ingest
from safetynet.features.store import OfflineStore, stored_columns

# an ID number as a token of its own: a run of digits inside a hex pseudonym is not one
RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("SAFETYNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SAFETYNET_PSEUDONYM_SECRET", raising=False)
    monkeypatch.delenv("SAFETYNET_MODE", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def store_hash(settings: Settings) -> str:
    """Hash of every file (path and content) under the store directory."""
    h = hashlib.sha256()
    root = settings.store_dir
    if not root.exists():
        return "absent"
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def ledger(result) -> pd.DataFrame:
    return pd.read_parquet(result.path / "rejects.parquet")


def test_valid_delivery_is_accepted_whole_with_pseudonyms_and_lineage(settings, tmp_path):
    tables = valid_tables()
    res = ingest(write_delivery(tmp_path / "in", tables), settings)
    assert res.status == "committed"
    assert ledger(res).empty
    con = OfflineStore(settings).connect()
    for t in TABLES:
        rep = next(r for r in res.report["tables"] if r["table"] == t.name)
        assert rep["rows_read"] == rep["accepted"] == len(tables[t.name]), t.name
        df = pd.read_parquet(res.path / "tables" / f"{t.name}.parquet")
        assert list(df.columns) == [c for c, _ in stored_columns(t)], t.name
        assert (df["_delivery_id"] == res.delivery_id).all()
        assert sorted(df["_source_line"]) == list(range(2, len(tables[t.name]) + 2))
        if t.person_column or t.household_column:
            assert df["household_key"].notna().all(), t.name
        assert con.execute(f"SELECT count(*) FROM {t.name}").fetchall()[0][0] == len(df)
    claims = pd.read_parquet(res.path / "tables" / "claims.parquet")
    persons = pd.read_parquet(res.path / "tables" / "persons.parquet")
    # person-level rows carry the household of the person in the registry
    merged = claims.merge(persons[["person_key", "household_key"]], on="person_key")
    assert (merged["household_key_x"] == merged["household_key_y"]).all()
    assert len(merged) == len(claims)
    assert {d["department"]: d["match_rate"] for d in res.report["departments"]
            if d["match_rate"] is not None} == {
        "medical_insurance": 1.0, "disability": 1.0, "education": 1.0, "hrss": 1.0,
        "economic": 1.0}


def _break_every_table(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Inject one kind of bad row into every table; returns table -> expected reason."""
    expected = {}
    tables["households"].loc[1, "urban_rural"] = "suburban"
    expected["households"] = "invalid_category"
    p = tables["persons"]
    p.loc[4, "resident_id"] = p.loc[4, "resident_id"][:17] + (
        "0" if p.loc[4, "resident_id"][17] != "0" else "1")
    expected["persons"] = "invalid_id_check"
    tables["assistance"].loc[0, "household_id"] = "H9999"
    expected["assistance"] = "unknown_household"
    tables["claims"].loc[2, "out_of_pocket"] = "-3"
    expected["claims"] = "negative_amount"
    tables["disability_certificates"].loc[3, "grade"] = "7"
    expected["disability_certificates"] = "out_of_range"
    tables["enrolment"].loc[1, "enrol_date"] = "01/09/2022"
    expected["enrolment"] = "invalid_date"
    att = tables["attendance"]
    tables["attendance"] = pd.concat([att, att.iloc[[2]]], ignore_index=True)
    expected["attendance"] = "duplicate"
    tables["unemployment"].loc[0, "start_date"] = "2031-01-01"
    expected["unemployment"] = "future_date"
    tables["unemployment_benefits"].loc[5, "amount"] = "lots"
    expected["unemployment_benefits"] = "wrong_type"
    tables["contributions"].loc[6, "knowledge_date"] = "2023-01-01"
    expected["contributions"] = "knowledge_before_event"
    tables["pensions"].loc[2, "pension_type"] = ""
    expected["pensions"] = "missing_required"
    tables["vehicles"].loc[1, "resident_id"] = "12345"
    expected["vehicles"] = "malformed_id"
    tables["real_estate"].loc[0, "resident_id"] = ""
    expected["real_estate"] = "missing_id"
    tables["businesses"].loc[3, "resident_id"] = person_id(99)  # valid, not registered
    expected["businesses"] = "unknown_person"
    return expected


def test_every_row_is_accepted_or_in_the_ledger_for_every_table(settings, tmp_path):
    tables = valid_tables()
    expected = _break_every_table(tables)
    res = ingest(write_delivery(tmp_path / "in", tables), settings)
    rej = ledger(res)
    for t in TABLES:
        rep = next(r for r in res.report["tables"] if r["table"] == t.name)
        n = len(tables[t.name])
        mine = rej[rej["file"] == t.file]
        accepted = pd.read_parquet(res.path / "tables" / f"{t.name}.parquet")
        assert rep["rows_read"] == n
        assert rep["accepted"] + rep["rejected"] == n, t.name
        assert len(accepted) == rep["accepted"] and len(mine) == rep["rejected"]
        # each source line exactly once, accepted or rejected
        lines = sorted([*accepted["_source_line"], *mine["line"]])
        assert lines == list(range(2, n + 2)), t.name
        assert expected[t.name] in set(mine["reason"]), (t.name, mine.to_dict("records"))
    # persons 3-5 are not registered (4: bad check character; 3 and 5: their household
    # row H0001 was rejected), so their records elsewhere are unmatched, and reported
    claims = next(r for r in res.report["tables"] if r["table"] == "claims")
    assert claims["unmatched"] == 3  # of 11 valid rows (one has a negative amount)
    assert claims["match_rate"] == round(8 / 11, 4)


def test_ledger_holds_no_personal_values(settings, tmp_path):
    tables = valid_tables()
    _break_every_table(tables)
    res = ingest(write_delivery(tmp_path / "in", tables), settings)
    rej = ledger(res)
    text = " ".join(rej.astype(str).fillna("").to_numpy().ravel())
    assert not RESIDENT_ID.search(text)
    assert set(rej.columns) == {"delivery_id", "department", "file", "line", "reason",
                                "column", "detail"}
    # a non-personal bad value is shown to help the department fix it
    assert "suburban" in text and "01/09/2022" in text


def test_store_holds_no_id_numbers_and_no_names(settings, tmp_path):
    tables = valid_tables()
    tables["persons"].loc[0, "resident_id"] = tables["persons"].loc[0, "resident_id"][:17] + "X"
    ingest(write_delivery(tmp_path / "in", tables), settings)
    names = set(tables["persons"]["name"])
    addresses = set(tables["households"]["address"])
    scanned = 0
    for path in settings.store_dir.rglob("*.parquet"):
        df = pd.read_parquet(path)
        for col in df.columns:
            values = df[col].dropna().astype(str)
            assert not values.str.contains(RESIDENT_ID).any(), (path, col)
            assert not values.isin(names | addresses).any(), (path, col)
            assert not values.isin(tables["persons"]["resident_id"]).any(), (path, col)
            for body in tables["persons"]["resident_id"].str[:17]:  # nowhere, not even inside
                assert not values.str.contains(body, regex=False).any(), (path, col)
        scanned += 1
    assert scanned == len(TABLES) + 1  # every table plus the ledger
    for path in settings.store_dir.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert not RESIDENT_ID.search(text) and not any(n in text for n in names)


def test_identity_table_keeps_names_and_addresses_by_pseudonym(settings, tmp_path):
    tables = valid_tables()
    res = ingest(write_delivery(tmp_path / "in", tables), settings)
    persons = pd.read_parquet(res.path / "tables" / "persons.parquet")
    with sqlite3.connect(settings.identity_path) as con:
        ident = pd.read_sql("SELECT * FROM persons", con)
        homes = pd.read_sql("SELECT * FROM households", con)
    assert set(ident["name"]) == set(tables["persons"]["name"])
    assert set(ident["person_key"]) == set(persons["person_key"])
    assert set(homes["address"]) == set(tables["households"]["address"])
    # upsert: ingesting a changed delivery later (a newer knowledge date) updates names
    t2 = {"persons": tables["persons"].copy()}
    t2["persons"].loc[0, "name"] = "新名字"
    t2["persons"]["knowledge_date"] = "2024-09-30"
    ingest(write_delivery(tmp_path / "in2", t2), settings)
    with sqlite3.connect(settings.identity_path) as con:
        ident2 = pd.read_sql("SELECT * FROM persons", con)
    assert len(ident2) == len(ident) and "新名字" in set(ident2["name"])


def test_same_delivery_twice_changes_nothing(settings, tmp_path):
    src = write_delivery(tmp_path / "in", valid_tables())
    first = ingest(src, settings)
    before = store_hash(settings)
    with sqlite3.connect(settings.identity_path) as con:
        ident = con.execute("SELECT * FROM persons ORDER BY person_key").fetchall()
    second = ingest(src, settings)
    assert second.status == "already_ingested"
    assert second.delivery_id == first.delivery_id
    assert store_hash(settings) == before
    with sqlite3.connect(settings.identity_path) as con:
        assert con.execute("SELECT * FROM persons ORDER BY person_key").fetchall() == ident
    assert not list(settings.store_dir.glob(".staging-*"))


def test_legacy_ids_link_to_the_same_person(settings, tmp_path):
    tables = valid_tables()
    rid = tables["persons"].loc[0, "resident_id"]  # born 1950: has a legacy form
    legacy = rid[:6] + rid[8:17]
    tables["claims"].loc[0, "resident_id"] = legacy
    tables["contributions"].loc[0, "resident_id"] = f"{rid[:6]} {rid[6:].lower()}"
    res = ingest(write_delivery(tmp_path / "in", tables), settings)
    assert ledger(res).empty
    claims = next(r for r in res.report["tables"] if r["table"] == "claims")
    assert claims["legacy_ids_converted"] == 1
    con = OfflineStore(settings).connect()
    keys = con.execute("SELECT (SELECT person_key FROM claims WHERE claim_id = 'C0'), "
                   "(SELECT person_key FROM contributions WHERE _source_line = 2), "
                   "(SELECT person_key FROM persons WHERE _source_line = 2)").fetchall()[0]
    assert len(set(keys)) == 1


def test_later_delivery_links_to_committed_registry_and_latest_knowledge_wins(settings,
                                                                              tmp_path):
    tables = valid_tables()
    ingest(write_delivery(tmp_path / "in1", tables), settings)
    claims = tables["claims"].copy()
    claims.loc[0, "out_of_pocket"] = "999.0"  # a correction, known later
    claims.loc[0, "knowledge_date"] = "2024-10-01"
    claims.loc[1, "knowledge_date"] = "2024-03-10"  # an older version must not win
    claims.loc[1, "out_of_pocket"] = "1.0"
    res = ingest(write_delivery(tmp_path / "in2", {"claims": claims}), settings)
    assert res.status == "committed" and ledger(res).empty  # persons known from delivery 1
    store = OfflineStore(settings)
    assert len(store.deliveries()) == 2
    con = store.connect()
    got = dict(con.execute("SELECT claim_id, out_of_pocket FROM claims").fetchall())
    assert len(got) == len(claims)
    assert got["C0"] == 999.0 and got["C1"] == 400.0
    nulls = con.execute("SELECT count(*) FROM claims WHERE household_key IS NULL").fetchall()
    assert nulls == [(0,)]


def test_gbk_csv_and_parquet_deliveries_read_the_same(settings, tmp_path):
    tables = valid_tables()
    a = ingest(write_delivery(tmp_path / "gbk", tables, encoding="gbk"), settings)
    assert {t["encoding"] for t in a.report["tables"]} == {"gb18030"}
    b = ingest(write_delivery(tmp_path / "pq", tables, fmt="parquet"), settings)
    assert a.delivery_id != b.delivery_id
    for name in ("persons", "households", "claims"):
        x = pd.read_parquet(a.path / "tables" / f"{name}.parquet").drop(columns="_delivery_id")
        y = pd.read_parquet(b.path / "tables" / f"{name}.parquet").drop(columns="_delivery_id")
        pd.testing.assert_frame_equal(x, y)
    with sqlite3.connect(settings.identity_path) as con:
        names = {r[0] for r in con.execute("SELECT name FROM persons")}
    assert names == set(tables["persons"]["name"])  # GBK names decoded correctly


def test_production_mode_without_secret_is_a_clear_error(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETYNET_MODE", "production")
    get_settings.cache_clear()
    src = write_delivery(tmp_path / "in", valid_tables())
    result = CliRunner().invoke(app, ["ingest", str(src), "--quiet"])
    assert result.exit_code == 2
    assert "SAFETYNET_PSEUDONYM_SECRET" in result.output
    assert store_hash(get_settings()) == "absent"


def test_cli_prints_report_and_saves_it(settings, tmp_path):
    src = write_delivery(tmp_path / "in", valid_tables())
    result = CliRunner().invoke(app, ["ingest", str(src), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "medical_insurance" in result.output and "100.0%" in result.output
    (delivery,) = OfflineStore(settings).deliveries()
    report = json.loads((Path(delivery["path"]) / "report.json").read_text())
    assert report["delivery_id"] == delivery["delivery_id"]
    again = CliRunner().invoke(app, ["ingest", str(src), "--quiet"])
    assert again.exit_code == 0 and "already ingested" in again.output


def test_empty_store_still_has_typed_views(settings):
    con = OfflineStore(settings).connect()
    for t in TABLES:
        rel = con.execute(f"DESCRIBE {t.name}").fetchall()
        assert [r[0] for r in rel] == [c for c, _ in stored_columns(t)]
        assert con.execute(f"SELECT count(*) FROM {t.name}").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]
