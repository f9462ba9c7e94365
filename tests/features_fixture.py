"""A tiny hand-made offline store for feature tests (written directly as store Parquet).

Three households, records chosen so feature values can be computed by hand:

H1 (urban, district A): head P1 (b. 1980-07-15), spouse P2 (b. 1982-01-01), child P3
(b. 2012-05-01), grandparent P4 (b. 1940-01-01, died 2024-05-10, known 2024-05-20).
  P1 contributions: Jul-Dec 2023 5000/month, Jan-Jun 2024 3000/month, each known on the 10th
  of the next month (contribution windows end 3 months before T: reporting lag).
  P3 claims: serious 2024-05-01 oop 4000 (known 2024-05-20); outpatient 2024-06-20 oop 500
  known 2024-07-10 (after 2024-06-30).
  P2 disability: grade 3 issued 2023-01-01, revoked 2024-04-01 (a second version known
  2024-04-05); grade 2 issued 2024-04-01 (known 2024-04-05): worsened.
  P2 registered unemployed from 2024-05-01 (open).
  P3 enrolled in primary school with education assistance; attendance Apr 2/20, May 6/20,
  Jun 4/15 (June known 2024-07-05).
H2 (rural, district B): P5 alone (b. 1950-03-01), resident pension 1200 from 2015-01-01;
  dibao 2020-01-01 to 2024-02-29 (first delivered open, end recorded 2024-03-10).
H3 (urban, district A): registered 2024-05-01 (so absent at earlier as-of dates), P6
  (b. 1990-01-01) with a car and a flat.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd

from safetynet.contracts import table
from safetynet.features.store import stored_columns

D = date


def _months(y: int, months: range) -> list[date]:
    return [D(y, m, 1) for m in months]


def base_tables() -> dict[str, list[dict]]:
    """Rows per table (store columns; omitted columns are NULL)."""
    contributions = [  # 5000 a month until December 2023, 3000 from January 2024
        {"person_key": "P1", "month": m, "contribution_base": 5000.0 if m < D(2024, 1, 1)
         else 3000.0, "knowledge_date": D(m.year + m.month // 12, m.month % 12 + 1, 10)}
        for m in [*_months(2023, range(7, 13)), *_months(2024, range(1, 7))]]
    return {
        "households": [
            {"household_key": "H1", "district": "A", "urban_rural": "urban",
             "registered_date": D(2005, 1, 1), "knowledge_date": D(2005, 1, 1)},
            {"household_key": "H2", "district": "B", "urban_rural": "rural",
             "registered_date": D(1990, 1, 1), "knowledge_date": D(1990, 1, 1)},
            {"household_key": "H3", "district": "A", "urban_rural": "urban",
             "registered_date": D(2024, 5, 1), "knowledge_date": D(2024, 5, 3)},
        ],
        "persons": [
            {"person_key": "P1", "household_key": "H1", "sex": "M", "birth_date": D(1980, 7, 15),
             "relation_to_head": "head", "registered_date": D(2005, 1, 1),
             "knowledge_date": D(2005, 1, 1)},
            {"person_key": "P2", "household_key": "H1", "sex": "F", "birth_date": D(1982, 1, 1),
             "relation_to_head": "spouse", "registered_date": D(2005, 1, 1),
             "knowledge_date": D(2005, 1, 1)},
            {"person_key": "P3", "household_key": "H1", "sex": "F", "birth_date": D(2012, 5, 1),
             "relation_to_head": "child", "registered_date": D(2012, 5, 10),
             "knowledge_date": D(2012, 5, 10)},
            {"person_key": "P4", "household_key": "H1", "sex": "M", "birth_date": D(1940, 1, 1),
             "relation_to_head": "parent", "registered_date": D(2005, 1, 1),
             "knowledge_date": D(2005, 1, 1)},
            {"person_key": "P5", "household_key": "H2", "sex": "F", "birth_date": D(1950, 3, 1),
             "relation_to_head": "head", "registered_date": D(1990, 1, 1),
             "knowledge_date": D(1990, 1, 1)},
            {"person_key": "P6", "household_key": "H3", "sex": "M", "birth_date": D(1990, 1, 1),
             "relation_to_head": "head", "registered_date": D(2024, 5, 1),
             "knowledge_date": D(2024, 5, 3)},
        ],
        "contributions": contributions,
        "claims": [
            {"claim_id": "C1", "person_key": "P3", "claim_date": D(2024, 5, 1),
             "care_type": "inpatient", "total_cost": 20000.0, "reimbursed": 16000.0,
             "out_of_pocket": 4000.0, "diagnosis_group": "cancer", "serious_illness": True,
             "knowledge_date": D(2024, 5, 20)},
            {"claim_id": "C2", "person_key": "P3", "claim_date": D(2024, 6, 20),
             "care_type": "outpatient", "total_cost": 800.0, "reimbursed": 300.0,
             "out_of_pocket": 500.0, "diagnosis_group": "respiratory",
             "serious_illness": False, "knowledge_date": D(2024, 7, 10)},
        ],
        "disability_certificates": [
            {"certificate_id": "DC1", "person_key": "P2", "category": "physical", "grade": 3,
             "issue_date": D(2023, 1, 1), "knowledge_date": D(2023, 1, 5)},
            {"certificate_id": "DC2", "person_key": "P2", "category": "physical", "grade": 2,
             "issue_date": D(2024, 4, 1), "knowledge_date": D(2024, 4, 5)},
        ],
        "unemployment": [
            {"registration_id": "U1", "person_key": "P2", "start_date": D(2024, 5, 1),
             "knowledge_date": D(2024, 5, 2)},
        ],
        "enrolment": [
            {"enrolment_id": "E1", "person_key": "P3", "school_level": "primary",
             "enrol_date": D(2018, 9, 1), "education_assistance": True,
             "knowledge_date": D(2018, 9, 5)},
        ],
        "attendance": [
            {"person_key": "P3", "month": D(2024, 4, 1), "school_days": 20, "absence_days": 2,
             "knowledge_date": D(2024, 5, 5)},
            {"person_key": "P3", "month": D(2024, 5, 1), "school_days": 20, "absence_days": 6,
             "knowledge_date": D(2024, 6, 5)},
            {"person_key": "P3", "month": D(2024, 6, 1), "school_days": 15, "absence_days": 4,
             "knowledge_date": D(2024, 7, 5)},
        ],
        "pensions": [
            {"pension_id": "PE1", "person_key": "P5", "pension_type": "resident",
             "start_date": D(2015, 1, 1), "monthly_amount": 1200.0,
             "knowledge_date": D(2015, 1, 5)},
        ],
        "assistance": [
            {"record_id": "A1", "household_key": "H2", "programme": "dibao",
             "start_date": D(2020, 1, 1), "monthly_amount": 800.0,
             "knowledge_date": D(2020, 1, 5)},
        ],
        "vehicles": [
            {"vehicle_id": "V1", "person_key": "P6", "registered_date": D(2024, 5, 10),
             "estimated_value": 80000.0, "knowledge_date": D(2024, 5, 12)},
        ],
        "real_estate": [
            {"property_id": "R1", "person_key": "P6", "acquired_date": D(2024, 5, 10),
             "floor_area": 90.0, "knowledge_date": D(2024, 5, 12)},
        ],
    }


def second_delivery() -> dict[str, list[dict]]:
    """Later knowledge: the death of P4, P4's first certificate revoked, H2 leaving dibao."""
    return {
        "persons": [
            {"person_key": "P4", "household_key": "H1", "sex": "M", "birth_date": D(1940, 1, 1),
             "relation_to_head": "parent", "registered_date": D(2005, 1, 1),
             "death_date": D(2024, 5, 10), "knowledge_date": D(2024, 5, 20)},
        ],
        "disability_certificates": [
            {"certificate_id": "DC1", "person_key": "P2", "category": "physical", "grade": 3,
             "issue_date": D(2023, 1, 1), "revoked_date": D(2024, 4, 1),
             "knowledge_date": D(2024, 4, 5)},
        ],
        "assistance": [
            {"record_id": "A1", "household_key": "H2", "programme": "dibao",
             "start_date": D(2020, 1, 1), "end_date": D(2024, 2, 29), "monthly_amount": 800.0,
             "knowledge_date": D(2024, 3, 10)},
        ],
    }


HOUSEHOLD_OF = {"P1": "H1", "P2": "H1", "P3": "H1", "P4": "H1", "P5": "H2", "P6": "H3"}


def write_delivery(store_dir: Path, delivery_id: str, rows: dict[str, list[dict]],
                   ingested_at: str) -> None:
    """Write one committed delivery the way ingest lays it out."""
    out = Path(store_dir) / "deliveries" / delivery_id
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for name, records in rows.items():
        cols = stored_columns(table(name))
        frame = pd.DataFrame(records)
        if "household_key" not in frame and "person_key" in frame:
            frame["household_key"] = frame["person_key"].map(HOUSEHOLD_OF)
        frame["_delivery_id"] = delivery_id
        frame["_source_line"] = range(2, len(frame) + 2)
        for col, ty in cols:
            if col not in frame:
                frame[col] = None
            if ty == "DATE":
                frame[col] = pd.to_datetime(frame[col])
            elif ty == "DOUBLE":
                frame[col] = frame[col].astype("float64")
            elif ty == "BIGINT":
                frame[col] = frame[col].astype("Int64")
            elif ty == "BOOLEAN":
                frame[col] = frame[col].astype("boolean")
            else:
                frame[col] = frame[col].astype("string")
        frame[[c for c, _ in cols]].to_parquet(out / "tables" / f"{name}.parquet", index=False)
    (out / "report.json").write_text(json.dumps({"ingested_at": ingested_at}), encoding="utf-8")


def write_store(store_dir: Path, extra: dict[str, list[dict]] | None = None) -> Path:
    """The fixture store; `extra` adds a third delivery (for knowledge-date tests)."""
    write_delivery(store_dir, "d1", base_tables(), "2024-01-01T00:00:00")
    write_delivery(store_dir, "d2", second_delivery(), "2024-06-01T00:00:00")
    if extra:
        write_delivery(store_dir, "d3", extra, "2024-08-01T00:00:00")
    return Path(store_dir)
