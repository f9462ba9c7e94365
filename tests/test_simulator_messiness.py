"""Configured messiness rates are met within tolerance, measured from the files themselves."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from safetynet.simulator import SimulationConfig, simulate
from safetynet.simulator.io import read_table

CFG = SimulationConfig(
    households=1500, months=24, seed=11, truth_replicates=1, truth_every=24,
    duplicate_rate=0.02, bad_check_rate=0.01, legacy_id_rate=0.3, out_of_range_rate=0.01,
    coverage_gap_rate=0.05,
    lag_days=(("civil_affairs", 5, 20.0), ("medical_insurance", 10, 35.0),
              ("disability", 15, 40.0), ("education", 3, 12.0), ("hrss", 7, 25.0),
              ("economic", 20, 60.0)),
)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("mess") / "city"
    return out, simulate(CFG, out, progress=False)


def _entry(manifest, name):
    return next(f for f in manifest["files"] if f["table"] == name)


@pytest.mark.parametrize("name", ["claims", "contributions", "attendance"])
def test_duplicate_rows_at_configured_rate(city, name):
    out, manifest = city
    df = read_table(out, name, manifest)
    dup = int(df.duplicated().sum())
    assert dup == _entry(manifest, name)["injected"]["duplicates"]
    rate = dup / (len(df) - dup)
    assert abs(rate - CFG.duplicate_rate) < 0.3 * CFG.duplicate_rate, rate


def test_bad_check_characters_and_legacy_ids_at_configured_rates(city):
    out, manifest = city
    persons = read_table(out, "persons", manifest)
    old = set(persons.loc[persons["birth_date"] < "1980-01-01", "resident_id"])
    df = read_table(out, "contributions", manifest)
    ids = df.loc[~df.duplicated(), "resident_id"]  # injected counts are before duplication
    legacy = ids.str.len() == 15
    assert int(legacy.sum()) == _entry(manifest, "contributions")["injected"]["legacy_id"]
    # a legacy number upgrades to a registry number of someone born before 1980
    upgraded = ids[legacy].str[:6] + "19" + ids[legacy].str[6:]
    reg17 = {i[:17] for i in old}
    assert upgraded.isin(reg17).all()
    old_rows = ids.str[:17].isin(reg17) | legacy
    share = legacy.sum() / old_rows.sum()
    assert 0.15 < share < 0.45, share  # per-person rate 0.3, weighted by rows
    from safetynet.ids import normalize_series

    _, reason = normalize_series(ids)
    bad = (reason == "invalid_id_check").sum() / (~legacy).sum()
    assert abs(bad - CFG.bad_check_rate) < 0.4 * CFG.bad_check_rate, bad
    assert (ids.str[-1] == "x").any()  # lower-case x, still valid after normalisation


@pytest.mark.parametrize("name,dept,event", [
    ("claims", "medical_insurance", "claim_date"), ("unemployment", "hrss", "start_date"),
    ("assistance", "civil_affairs", "start_date"),
])
def test_knowledge_lag_matches_department_rate(city, name, dept, event):
    out, manifest = city
    df = read_table(out, name, manifest)
    lag = (df["knowledge_date"] - df[event]).dt.days
    assert (lag >= dict((d, a) for d, a, _ in CFG.lag_days)[dept]).all()
    lo, mean = next((a, b) for d, a, b in CFG.lag_days if d == dept)
    # rows whose knowledge date falls after the extract are not delivered: a slight downward bias
    assert lo + 0.75 * mean < lag.mean() < lo + 1.15 * mean, lag.mean()


def test_monthly_tables_lag_month_end(city):
    out, manifest = city
    df = read_table(out, "contributions", manifest)
    month_end = df["month"] + pd.offsets.MonthEnd(0)
    assert (df["knowledge_date"] > month_end).all()


def test_coverage_gaps_leave_district_months_missing(city):
    out, manifest = city
    entry = _entry(manifest, "contributions")
    assert entry["injected"]["gap_dropped"] > 0
    df = read_table(out, "contributions", manifest)
    per_month = df.assign(region=df["resident_id"].str[:6]).groupby(["region", "month"]).size()
    cells = len(CFG.districts) * CFG.months
    missing = cells - len(per_month)
    assert 0 < missing / cells < 3 * CFG.coverage_gap_rate


def test_out_of_range_values_present_at_rate(city):
    out, manifest = city
    claims = read_table(out, "claims", manifest)
    neg = int((claims["out_of_pocket"] < 0).sum())
    assert neg >= _entry(manifest, "claims")["injected"]["out_of_range"] > 0
    assert abs(neg / len(claims) - CFG.out_of_range_rate) < 0.5 * CFG.out_of_range_rate
    certs = read_table(out, "disability_certificates", manifest)
    assert certs["grade"].between(1, 5).all()
    assert np.isin(certs["grade"].dropna().unique(), [1, 2, 3, 4, 5]).all()
