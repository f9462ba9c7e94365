"""Early-warning indicators over the hand-made store."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from features_fixture import write_store

from safetynet.config import DEFAULT_POLICY_FILE, load_policy
from safetynet.features.build import build_features
from safetynet.features.indicators import INDICATORS, compute_indicators

T = date(2024, 6, 30)


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> pd.DataFrame:
    return build_features([date(2024, 2, 29), date(2024, 3, 31), T],
                          write_store(tmp_path_factory.mktemp("s")))


def raised(out: pd.DataFrame, day: date) -> dict[tuple[str, str], pd.Series]:
    sub = out[out.as_of_date == pd.Timestamp(day)]
    return {(r.household_key, r.indicator_id): r for r in sub.itertuples()}


def test_expected_indicators_with_event_dates_and_evidence(frame):
    out = compute_indicators(frame, load_policy().indicators)
    june = raised(out, T)
    assert set(june) == {
        ("H1", "serious_illness"), ("H1", "disability_new_or_worse"), ("H1", "unemployment"),
        ("H1", "medical_cost_beyond_income"), ("H1", "income_drop"),
        ("H2", "elderly_living_alone"), ("H2", "left_assistance_recently")}
    assert june["H1", "serious_illness"].triggered_on == pd.Timestamp("2024-05-01")
    assert june["H1", "disability_new_or_worse"].triggered_on == pd.Timestamp("2024-04-01")
    assert june["H2", "left_assistance_recently"].triggered_on == pd.Timestamp("2024-02-29")
    assert june["H1", "income_drop"].triggered_on == pd.Timestamp(T)
    evidence = json.loads(june["H1", "medical_cost_beyond_income"].evidence)
    assert evidence["oop_3m"] == 4000.0 and evidence["income_proxy_monthly"] == 3000.0
    assert evidence["thresholds"] == {"oop_to_income_ratio": 1.0}
    # Before the end of dibao was recorded the household had not left assistance.
    assert ("H2", "left_assistance_recently") not in raised(out, date(2024, 2, 29))


def test_thresholds_come_from_policy(frame, tmp_path):
    policy = load_policy().replace(indicators={
        "oop_to_income_ratio": 3.0, "income_drop_ratio": 0.7, "serious_illness_months": 1})
    june = raised(compute_indicators(frame, policy.indicators), T)
    for gone in ("medical_cost_beyond_income", "income_drop", "serious_illness"):
        assert ("H1", gone) not in june
    policy = policy.replace(indicators={"serious_illness_months": 5})
    with pytest.raises(ValueError, match="serious_illness_claims_5m"):
        compute_indicators(frame, policy.indicators)
    lacking = tmp_path / "policy.toml"  # a threshold missing from the file: refused on load
    lacking.write_text(DEFAULT_POLICY_FILE.read_text(encoding="utf-8").replace(
        "elderly_alone_age = 65\n", ""), encoding="utf-8")
    with pytest.raises(ValueError, match="elderly_alone_age"):
        load_policy(lacking)


def test_one_household_from_the_online_store(frame, tmp_path):
    from safetynet.features.online import SQLiteOnlineStore

    store = SQLiteOnlineStore(tmp_path / "o.sqlite")
    store.write(frame)
    one = compute_indicators(pd.DataFrame([store.get("H1")]), load_policy().indicators)
    offline = compute_indicators(frame[frame.as_of_date == pd.Timestamp(T)],
                                 load_policy().indicators)
    offline = offline[offline.household_key == "H1"].reset_index(drop=True)
    pd.testing.assert_frame_equal(one, offline, check_dtype=False)


def test_every_indicator_documented_and_policy_keys_exist():
    keys = set(type(load_policy().indicators).model_fields)
    for ind in INDICATORS:
        assert ind.description_en and ind.description_zh
        assert set(ind.thresholds) <= keys, ind.id
    assert len({i.id for i in INDICATORS}) == len(INDICATORS) >= 9


def test_indicators_command(tmp_path):
    from typer.testing import CliRunner

    from safetynet.cli import app
    from safetynet.config import get_settings

    write_store(get_settings().store_dir)
    out = tmp_path / "ind.parquet"
    result = CliRunner().invoke(app, ["indicators", "--as-of", T.isoformat(), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "elderly_living_alone" in result.output
    assert len(pd.read_parquet(out)) == 7
