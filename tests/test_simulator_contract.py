"""Every simulated table conforms to the department contract (columns, types, rules)."""

from pathlib import Path

import pandas as pd
import pandera.errors
import pytest

from safetynet.contracts import SCHEMA_VERSION, TABLES, pandera_schema
from safetynet.ids import normalize_series
from safetynet.simulator import SimulationConfig, simulate
from safetynet.simulator.io import read_table

CFG = SimulationConfig(households=800, months=24, seed=7, truth_replicates=2)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim") / "city"
    return out, simulate(CFG, out, progress=False)


def test_one_file_per_contract_table_with_exact_header(city):
    out, manifest = city
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert [f["table"] for f in manifest["files"]] == [t.name for t in TABLES]
    for t in TABLES:
        entry = next(f for f in manifest["files"] if f["table"] == t.name)
        assert entry["path"] == t.file
        with open(out / t.file, encoding=entry["encoding"]) as fh:
            assert fh.readline().strip().replace('"', "").split(",") == t.column_names
        assert entry["rows"] > 0, t.name
        assert entry["rows"] == len(pd.read_csv(out / t.file, encoding=entry["encoding"]))


def test_rows_pass_pandera_except_deliberate_out_of_range(city):
    out, manifest = city
    for t in TABLES:
        entry = next(f for f in manifest["files"] if f["table"] == t.name)
        df = read_table(out, t.name, manifest)
        injected = entry["injected"].get("out_of_range", 0)
        try:
            pandera_schema(t).validate(df, lazy=True)
            failed_rows = 0
        except pandera.errors.SchemaErrors as exc:
            cases = exc.failure_cases
            range_checks = cases["check"].astype(str).str.contains(
                "negative_amount|out_of_range|greater_than_or_equal_to|less_than_or_equal_to")
            assert range_checks.all(), (t.name, cases[~range_checks].head())
            failed_rows = cases["index"].nunique()
        # duplicated rows may repeat an injected defect
        assert injected <= failed_rows <= injected + entry["injected"].get("duplicates", 0), (
            t.name, injected, failed_rows)


def test_resident_ids_are_valid_unless_deliberately_broken(city):
    out, manifest = city
    for t in TABLES:
        if not t.person_column:
            continue
        entry = next(f for f in manifest["files"] if f["table"] == t.name)
        df = read_table(out, t.name, manifest)
        ids = df.loc[~df.duplicated(), t.person_column]  # counts are before duplication
        _, reason = normalize_series(ids)
        assert int((reason == "invalid_id_check").sum()) == entry["injected"].get("bad_check", 0)
        assert set(reason.dropna()) <= {"invalid_id_check"}, t.name


def test_gbk_files_are_gbk_and_hold_chinese_text(city):
    out, manifest = city
    gbk = {f["path"] for f in manifest["files"] if f["encoding"] == "gbk"}
    assert gbk == {t.file for t in TABLES if t.department in CFG.gbk_departments}
    raw = (out / "civil_affairs/households.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "区" in raw.decode("gbk")


def test_parquet_format_has_same_tables_and_rows(city, tmp_path):
    _, manifest = city
    pq_manifest = simulate(CFG, tmp_path / "pq", fmt="parquet", progress=False)
    for a, b in zip(manifest["files"], pq_manifest["files"], strict=True):
        assert b["path"] == a["path"][: -len(".csv")] + ".parquet"
        assert a["rows"] == b["rows"], a["table"]
    df = read_table(tmp_path / "pq", "claims", pq_manifest)
    assert list(df.columns) == [c.name for c in TABLES[3].columns]
