"""Feature build on a hand-made store: hand-computed values, knowledge dates, many dates."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from features_fixture import write_store

from safetynet.features.build import build_features, parse_dates

T = date(2024, 6, 30)
DATES = [date(2024, 2, 29), date(2024, 3, 31), T]


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> pd.DataFrame:
    return build_features(DATES, write_store(tmp_path_factory.mktemp("store")))


def row(frame: pd.DataFrame, key: str, day: date) -> pd.Series:
    hit = frame[(frame.household_key == key) & (frame.as_of_date == pd.Timestamp(day))]
    assert len(hit) == 1, (key, day)
    return hit.iloc[0]


def test_one_row_per_registered_household_and_date(frame):
    assert frame.groupby(["household_key", "as_of_date"]).size().max() == 1
    # H3 registered 2024-05-01: absent before.
    assert set(frame[frame.as_of_date == pd.Timestamp(T)].household_key) == {"H1", "H2", "H3"}
    assert set(frame[frame.as_of_date == pd.Timestamp(DATES[1])].household_key) == {"H1", "H2"}
    assert row(frame, "H2", T)["district"] == "B"


def test_household_rollup_and_membership_at_the_as_of_date(frame):
    # P4 died 2024-05-10 (known 2024-05-20): a member in March, not in June.
    march, june = row(frame, "H1", DATES[1]), row(frame, "H1", T)
    assert (march.household_size, june.household_size) == (4, 3)
    assert (march.members_age_80_plus, june.members_age_80_plus) == (1, 0)
    assert (march.deaths_12m, june.deaths_12m) == (0, 1)
    assert june.head_age == 43 and june.members_age_0_17 == 1
    assert june.dependency_ratio == pytest.approx(0.5)
    assert row(frame, "H2", DATES[0]).head_age == 73  # b. 1950-03-01, one day short of 74


def test_windows_and_knowledge_lag(frame):
    june = row(frame, "H1", T)
    # Contribution windows end 3 months before T (reporting lag): Jan-Mar vs Oct-Dec.
    assert june.contribution_base_3m_avg == pytest.approx(3000.0)
    assert june.contribution_base_prev3m_avg == pytest.approx(5000.0)
    assert june.contribution_base_trend == pytest.approx(-0.4)
    assert june.contribution_base_1m == 3000.0  # March
    # Apr 2023-Mar 2024 window, data from July 2023: 9 months.
    assert june.contribution_months_12m == 9 and june.months_without_contribution_12m == 3
    assert row(frame, "H1", DATES[1]).contribution_base_trend == pytest.approx(0.0)
    # Claim C2 (2024-06-20) is known after T: only C1 counts.
    assert june.oop_3m == pytest.approx(4000.0) and june.claims_3m == 1
    assert june.oop_3m_to_income == pytest.approx(4000.0 / 3000.0)
    assert june.serious_illness_claims_1m == 0 and june.serious_illness_claims_3m == 1
    assert june.months_since_serious_claim == 1
    # Attendance windows end 1 month before T: Mar-May, April 2 + May 6 days.
    assert june.absence_days_3m == 8 and june.school_days_3m == 40
    assert june.absence_rate_3m == pytest.approx(0.2) and june.max_pupil_absence_3m == 8
    assert june.absence_days_1m == 6 and june.pupils_absent_5plus_1m == 1


def test_spells_versions_and_missing_rules(frame):
    # Disability worsened from grade 3 to 2 on 2024-04-01.
    assert row(frame, "H1", DATES[1]).worst_disability_grade == 3
    june = row(frame, "H1", T)
    assert june.worst_disability_grade == 2 and june.new_or_worsened_disability_3m == 1
    assert june.disabled_members == 1 and june.able_working_age_adults == 1
    assert june.unemployed_working_age == 1 and june.current_unemployment_months == 1
    # Missing rules: constant 5 without a certificate; NULL ratios without income or pupils.
    h3 = row(frame, "H3", T)
    assert h3.worst_disability_grade == 5
    assert math.isnan(h3.oop_3m_to_income) and math.isnan(h3.absence_rate_3m)
    assert h3.vehicles == 1 and h3.property_area_per_capita == pytest.approx(90.0)
    assert pd.isna(row(frame, "H2", T).contribution_base_trend)


def test_spell_end_recorded_after_t_is_open_at_t(frame):
    # Dibao ended 2024-02-29 but the end was recorded on 2024-03-10.
    feb, mar, jun = (row(frame, "H2", d) for d in DATES)
    assert (feb.on_dibao, feb.on_any_assistance, feb.assistance_amount_monthly) == (1, 1, 800.0)
    assert pd.isna(feb.months_since_left_assistance)
    assert (mar.on_dibao, mar.months_since_left_assistance, mar.left_assistance_12m) == (0, 1, 1)
    assert jun.months_since_left_assistance == 4 and jun.ever_assisted == 1


def test_elderly_alone_and_audit_attributes(frame):
    h2 = row(frame, "H2", T)
    assert h2.elderly_living_alone == 1 and h2.pension_monthly == 1200.0
    assert h2.income_per_capita == pytest.approx(1200.0)
    assert (h2.urban_rural, h2.head_sex, h2.head_age_band) == ("rural", "F", "60-74")


def test_many_dates_in_one_build_equal_single_date_builds(frame, tmp_path):
    store = write_store(tmp_path / "store")
    for day in DATES[1:]:
        alone = build_features([day], store).reset_index(drop=True)
        part = frame[frame.as_of_date == pd.Timestamp(day)].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, alone)


def test_parse_dates_rejects_bad_input():
    assert parse_dates("2024-06-30,2024-01-31") == [date(2024, 1, 31), T]
    with pytest.raises(ValueError, match="2024-13-01"):
        parse_dates("2024-13-01")


def test_build_command_writes_parquet(tmp_path):
    from typer.testing import CliRunner

    from safetynet.cli import app
    from safetynet.config import get_settings
    from safetynet.features.definitions import output_columns

    write_store(get_settings().store_dir)
    out = tmp_path / "f.parquet"
    result = CliRunner().invoke(app, ["features", "build", "--as-of", "2024-03-31,2024-06-30",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    assert list(written.columns) == output_columns() and len(written) == 5
    bad = CliRunner().invoke(app, ["features", "build", "--as-of", "2024-02-30", "--out",
                                   str(out)])
    assert bad.exit_code != 0 and "2024-02-30" in bad.output


MOVE = {  # P2 moves from H1 to H3 in May; claim C1 is corrected to be P2's (both known later)
    "persons": [
        {"person_key": "P2", "household_key": "H3", "sex": "F", "birth_date": date(1982, 1, 1),
         "relation_to_head": "spouse", "registered_date": date(2024, 5, 15),
         "knowledge_date": date(2024, 5, 20)},
    ],
    "claims": [
        {"claim_id": "C1", "person_key": "P2", "claim_date": date(2024, 5, 1),
         "care_type": "inpatient", "total_cost": 20000.0, "reimbursed": 16000.0,
         "out_of_pocket": 4000.0, "diagnosis_group": "cancer", "serious_illness": True,
         "knowledge_date": date(2024, 6, 10)},
    ],
}


def test_bucketed_build_equals_one_query(tmp_path):
    import duckdb

    from safetynet.features.build import write_features

    store = write_store(tmp_path / "store", extra=MOVE)
    # a bucket count that puts H1 and H3 (P2's old and new household) in different buckets
    n = next(k for k in range(2, 50) if len({duckdb.sql(
        f"SELECT hash('{h}') % {k}").fetchall()[0][0] for h in ("H1", "H3")}) == 2)
    dates = [date(2024, 3, 31), date(2024, 5, 31), T]
    frames = []
    for buckets in (1, n):
        out = tmp_path / f"features-{buckets}.parquet"
        assert write_features(dates, out, store, buckets=buckets) == 8
        frames.append(pd.read_parquet(out).sort_values(["household_key", "as_of_date"])
                      .reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    june = frames[1][frames[1].as_of_date == T].set_index("household_key")
    assert june.loc["H3", "household_size"] == 2 and june.loc["H1", "household_size"] == 2
    assert june.loc["H3", "claims_3m"] == 1 and june.loc["H1", "claims_3m"] == 0
