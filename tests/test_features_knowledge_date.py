"""Knowledge-date correctness: nothing dated or known after T changes a feature at T."""

from __future__ import annotations

from datetime import date

import pandas as pd
from features_fixture import write_store

from safetynet.features.build import build_features

T = date(2024, 6, 30)
D = date

LATE = {  # every row is dated after T or known after T
    "claims": [
        # new claim dated after T
        {"claim_id": "C9", "person_key": "P3", "claim_date": D(2024, 7, 5),
         "care_type": "inpatient", "total_cost": 9e4, "reimbursed": 0.0, "out_of_pocket": 9e4,
         "diagnosis_group": "cancer", "serious_illness": True, "knowledge_date": D(2024, 7, 6)},
        # dated before T, known after T
        {"claim_id": "C8", "person_key": "P1", "claim_date": D(2024, 6, 1),
         "care_type": "inpatient", "total_cost": 5e4, "reimbursed": 0.0, "out_of_pocket": 5e4,
         "diagnosis_group": "stroke", "serious_illness": True, "knowledge_date": D(2024, 7, 15)},
        # correction of a known claim, recorded after T
        {"claim_id": "C1", "person_key": "P3", "claim_date": D(2024, 5, 1),
         "care_type": "inpatient", "total_cost": 20000.0, "reimbursed": 1.0,
         "out_of_pocket": 19999.0, "diagnosis_group": "cancer", "serious_illness": True,
         "knowledge_date": D(2024, 8, 1)},
    ],
    "contributions": [
        {"person_key": "P2", "month": D(2024, 3, 1), "contribution_base": 7000.0,
         "knowledge_date": D(2024, 7, 20)},
        {"person_key": "P1", "month": D(2024, 3, 1), "contribution_base": 1.0,
         "knowledge_date": D(2024, 7, 21)},  # restated after T
    ],
    "disability_certificates": [
        {"certificate_id": "DC2", "person_key": "P2", "category": "physical", "grade": 2,
         "issue_date": D(2024, 4, 1), "revoked_date": D(2024, 5, 1),
         "knowledge_date": D(2024, 8, 1)},
        {"certificate_id": "DC3", "person_key": "P5", "category": "visual", "grade": 1,
         "issue_date": D(2024, 6, 1), "knowledge_date": D(2024, 7, 2)},
    ],
    "unemployment": [
        {"registration_id": "U1", "person_key": "P2", "start_date": D(2024, 5, 1),
         "end_date": D(2024, 6, 1), "knowledge_date": D(2024, 8, 1)},
    ],
    "persons": [
        {"person_key": "P1", "household_key": "H1", "sex": "M", "birth_date": D(1980, 7, 15),
         "relation_to_head": "head", "registered_date": D(2005, 1, 1),
         "death_date": D(2024, 6, 1), "knowledge_date": D(2024, 8, 2)},
        {"person_key": "P7", "household_key": "H2", "sex": "M", "birth_date": D(2000, 1, 1),
         "relation_to_head": "child", "registered_date": D(2024, 7, 1),
         "knowledge_date": D(2024, 7, 1)},
    ],
    "households": [
        {"household_key": "H1", "district": "Z", "urban_rural": "rural",
         "registered_date": D(2005, 1, 1), "knowledge_date": D(2024, 9, 1)},
        {"household_key": "H4", "district": "A", "urban_rural": "urban",
         "registered_date": D(2024, 6, 15), "knowledge_date": D(2024, 7, 1)},  # no members
    ],
    "assistance": [
        {"record_id": "A2", "household_key": "H1", "programme": "temporary",
         "start_date": D(2024, 6, 1), "monthly_amount": 500.0, "knowledge_date": D(2024, 7, 3)},
    ],
    "attendance": [
        {"person_key": "P3", "month": D(2024, 5, 1), "school_days": 20, "absence_days": 20,
         "knowledge_date": D(2024, 7, 30)},
        {"person_key": "P3", "month": D(2024, 3, 1), "school_days": 20, "absence_days": 9,
         "knowledge_date": D(2024, 7, 30)},
    ],
    "enrolment": [
        {"enrolment_id": "E1", "person_key": "P3", "school_level": "primary",
         "enrol_date": D(2018, 9, 1), "dropout_date": D(2024, 6, 15),
         "education_assistance": True, "knowledge_date": D(2024, 7, 1)},
    ],
}

CONTROL = {  # dated and known before T: must change something
    "claims": [
        {"claim_id": "C7", "person_key": "P1", "claim_date": D(2024, 6, 10),
         "care_type": "outpatient", "total_cost": 300.0, "reimbursed": 100.0,
         "out_of_pocket": 200.0, "diagnosis_group": "injury", "serious_illness": False,
         "knowledge_date": D(2024, 6, 15)},
    ],
}


def _at(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    return frame[frame.as_of_date <= pd.Timestamp(day)].reset_index(drop=True)


def test_records_dated_or_known_after_t_change_nothing_at_t(tmp_path):
    dates = [date(2024, 3, 31), T, date(2024, 9, 30)]
    before = build_features(dates, write_store(tmp_path / "a"))
    after = build_features(dates, write_store(tmp_path / "b", extra=LATE))
    pd.testing.assert_frame_equal(_at(before, T), _at(after, T))
    # ...while the same records do change features after they became known.
    late = after[after.as_of_date == pd.Timestamp(dates[-1])].set_index("household_key")
    early = before[before.as_of_date == pd.Timestamp(dates[-1])].set_index("household_key")
    assert late.loc["H1", "district"] == "Z" and early.loc["H1", "district"] == "A"
    assert late.loc["H2", "household_size"] == early.loc["H2", "household_size"] + 1  # P7
    assert late.loc["H1", "household_size"] == early.loc["H1", "household_size"] - 1


def test_control_change_before_t_changes_features_at_t(tmp_path):
    before = build_features([T], write_store(tmp_path / "a"))
    after = build_features([T], write_store(tmp_path / "b", extra=CONTROL))
    b, a = (f.set_index("household_key").loc["H1"] for f in (before, after))
    assert a.oop_3m == b.oop_3m + 200.0 and a.claims_3m == b.claims_3m + 1
    unchanged = before[before.household_key != "H1"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        unchanged, after[after.household_key != "H1"].reset_index(drop=True))
