"""A tiny valid delivery for ingest tests: a few households, every contract table.

`valid_tables()` returns one DataFrame of strings per table (edit it to break things) and
`write_delivery()` writes the files and manifest.json the way a department would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd

from safetynet.contracts import TABLES
from safetynet.ids import make

DELIVERY_DATE = "2024-12-31"
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴霞",
         "徐丽", "孙涛"]


def person_id(i: int) -> str:
    return make("420106", dt.date(1950 + 3 * i, 1 + i % 12, 1 + i % 28), 2 * i + 1)


def valid_tables(households: int = 4) -> dict[str, pd.DataFrame]:
    """Every contract table with valid rows: `households` households of 3 persons each."""
    hh = [f"H{h:04d}" for h in range(households)]
    people = [(person_id(i), NAMES[i % len(NAMES)] + str(i), hh[i // 3], i)
              for i in range(3 * households)]
    kd = "2024-06-30"
    t: dict[str, list[dict]] = {
        "households": [dict(household_id=h, district="武昌区" if i % 2 else "洪山区",
                            street="中南路街", community=f"社区{i}",
                            urban_rural="urban" if i % 2 else "rural",
                            address=f"中南路{i + 1}号", registered_date="2010-03-01",
                            knowledge_date=kd) for i, h in enumerate(hh)],
        "persons": [dict(resident_id=rid, name=name, sex="M", birth_date="1980-01-01",
                         relation_to_head=("head", "spouse", "child")[i % 3],
                         household_id=h, registered_date="2010-03-01",
                         death_date="", knowledge_date=kd)
                    for rid, name, h, i in people],
        "assistance": [dict(record_id=f"A{i}", household_id=h, programme="dibao",
                            start_date="2023-01-01", end_date="", monthly_amount="650.5",
                            knowledge_date="2023-01-15") for i, h in enumerate(hh)],
    }
    per_person = {
        "claims": lambda r, i: dict(claim_id=f"C{i}", resident_id=r, claim_date="2024-03-05",
                                    care_type="inpatient", total_cost="1200.0",
                                    reimbursed="800.0", out_of_pocket="400.0",
                                    diagnosis_group="cancer", serious_illness="true",
                                    knowledge_date="2024-04-01"),
        "disability_certificates": lambda r, i: dict(
            certificate_id=f"D{i}", resident_id=r, category="physical", grade="2",
            issue_date="2019-05-01", revoked_date="", knowledge_date="2019-05-10"),
        "enrolment": lambda r, i: dict(enrolment_id=f"E{i}", resident_id=r,
                                       school_level="primary", enrol_date="2022-09-01",
                                       dropout_date="", education_assistance="false",
                                       knowledge_date="2022-09-10"),
        "attendance": lambda r, i: dict(resident_id=r, month="2024-05-01", school_days="21",
                                        absence_days="2", knowledge_date="2024-06-05"),
        "unemployment": lambda r, i: dict(registration_id=f"U{i}", resident_id=r,
                                          start_date="2024-01-10", end_date="",
                                          knowledge_date="2024-01-12"),
        "unemployment_benefits": lambda r, i: dict(resident_id=r, month="2024-02-01",
                                                   amount="1500", knowledge_date="2024-02-28"),
        "contributions": lambda r, i: dict(resident_id=r, month="2024-01-01",
                                           contribution_base="4200.0",
                                           knowledge_date="2024-02-15"),
        "pensions": lambda r, i: dict(pension_id=f"P{i}", resident_id=r, pension_type="resident",
                                      start_date="2015-01-01", monthly_amount="180",
                                      knowledge_date="2015-01-20"),
        "vehicles": lambda r, i: dict(vehicle_id=f"V{i}", resident_id=r,
                                      registered_date="2020-01-01", deregistered_date="",
                                      estimated_value="30000", knowledge_date="2020-02-01"),
        "real_estate": lambda r, i: dict(property_id=f"R{i}", resident_id=r,
                                         acquired_date="2012-01-01", disposed_date="",
                                         floor_area="75.5", knowledge_date="2012-02-01"),
        "businesses": lambda r, i: dict(business_id=f"B{i}", resident_id=r,
                                        registered_date="2018-01-01", deregistered_date="",
                                        registered_capital="50000", knowledge_date="2018-01-05"),
    }
    for name, row in per_person.items():
        t[name] = [row(rid, i) for rid, _, _, i in people]
    frames = {name: pd.DataFrame(rows, dtype="string") for name, rows in t.items()}
    assert set(frames) == {tb.name for tb in TABLES}
    return {tb.name: frames[tb.name][tb.column_names] for tb in TABLES}


def write_delivery(directory: Path, tables: dict[str, pd.DataFrame], *, fmt: str = "csv",
                   encoding: str = "utf-8", declared: str | None = None,
                   manifest: bool = True, delivery_date: str = DELIVERY_DATE) -> Path:
    """Write the tables as a delivery (CSV in `encoding`, or Parquet) with manifest.json.

    `declared` overrides the encoding the manifest declares (to simulate a wrong one).
    """
    files = {}
    by_name = {tb.name: tb for tb in TABLES}
    for name, df in tables.items():
        tb = by_name[name]
        rel = f"{tb.department}/{tb.name}.{fmt}"
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            path.write_bytes(df.to_csv(index=False).encode(encoding))
        else:
            df.to_parquet(path, index=False)
        files[rel] = {"rows": len(df), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        if fmt == "csv":
            files[rel]["encoding"] = declared or encoding
    if manifest:
        doc = {"delivery_date": delivery_date, "files": files}
        (directory / "manifest.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return directory
