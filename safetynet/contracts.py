"""Department data contracts: one declarative schema per delivered table.

The same definitions drive the simulator (what it writes), validation at ingest
(`pandera_schema`), and the readable contract in docs/contracts.md (`render_markdown`).

Every event table carries the date the event happened (`event_date`) and the date the
department recorded or delivered it (`knowledge_date`): later stages must not use a
record before it was known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandera.pandas as pa

SCHEMA_VERSION = "1.0"

Kind = Literal["str", "id", "date", "int", "float", "bool", "category"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str
    required: bool = True
    values: tuple[str, ...] = ()  # allowed values for kind="category"
    min: float | None = None
    max: float | None = None
    personal: bool = False  # personal data: never stored in the feature store


@dataclass(frozen=True)
class Table:
    name: str
    department: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    event_date: str
    knowledge_date: str = "knowledge_date"
    person_column: str | None = "resident_id"  # column that links to the person registry
    household_column: str | None = None  # column that links to the household registry

    @property
    def file(self) -> str:
        return f"{self.department}/{self.name}.csv"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


DEPARTMENTS = {
    "civil_affairs": "Civil affairs (household registry, person registry, assistance rolls)",
    "medical_insurance": "Medical insurance (claims)",
    "disability": "Disabled Persons' Federation (disability certificates)",
    "education": "Education (enrolment, monthly attendance)",
    "hrss": "Human resources and social security (unemployment, contributions, pensions)",
    "economic": "Economic-status verification (vehicles, real estate, businesses)",
}

PROGRAMMES = ("dibao", "marginal_dibao", "special_hardship", "temporary", "rigid_expenditure")
DISABILITY_CATEGORIES = (
    "visual", "hearing", "speech", "physical", "intellectual", "mental", "multiple",
)
SCHOOL_LEVELS = (
    "preschool", "primary", "junior_secondary", "senior_secondary", "vocational", "tertiary",
)
DIAGNOSIS_GROUPS = (
    "respiratory", "injury", "digestive", "circulatory", "maternity", "other",
    # serious illnesses (the policy's 重特大疾病)
    "cancer", "renal_failure", "stroke", "heart_disease", "severe_mental",
)


def _kd() -> Column:
    return Column("knowledge_date", "date", "Date the department recorded or delivered the row.")


def _rid(desc: str = "Resident ID number (GB 11643-1999, 18 characters).") -> Column:
    return Column("resident_id", "id", desc, personal=True)


TABLES: tuple[Table, ...] = (
    Table(
        "households", "civil_affairs", "Household registry: one row per registered household.",
        (
            Column("household_id", "str", "Household registry number."),
            Column("district", "str", "District."),
            Column("street", "str", "Street (subdistrict or township)."),
            Column("community", "str", "Community (neighbourhood or village committee)."),
            Column("urban_rural", "category", "Urban or rural hukou area.",
                   values=("urban", "rural")),
            Column("address", "str", "Street address.", personal=True),
            Column("registered_date", "date", "Date the household was registered."),
            _kd(),
        ),
        primary_key=("household_id",), event_date="registered_date", person_column=None,
        household_column="household_id",
    ),
    Table(
        "persons", "civil_affairs", "Person registry: one row per registered resident.",
        (
            _rid(),
            Column("name", "str", "Full name.", personal=True),
            Column("sex", "category", "Sex as registered.", values=("M", "F")),
            Column("birth_date", "date", "Date of birth."),
            Column("relation_to_head", "category", "Relation to the household head.",
                   values=("head", "spouse", "child", "parent", "grandchild", "sibling",
                           "other")),
            Column("household_id", "str", "Household registry number."),
            Column("registered_date", "date", "Date the person joined the household."),
            Column("death_date", "date", "Date of death, if deceased.", required=False),
            _kd(),
        ),
        primary_key=("resident_id",), event_date="registered_date",
        household_column="household_id",
    ),
    Table(
        "assistance", "civil_affairs", "Assistance rolls: one row per granted assistance spell.",
        (
            Column("record_id", "str", "Assistance record number."),
            Column("household_id", "str", "Household registry number."),
            Column("programme", "category", "Assistance programme.", values=PROGRAMMES),
            Column("start_date", "date", "First month of assistance."),
            Column("end_date", "date", "Last month of assistance (empty while ongoing).",
                   required=False),
            Column("monthly_amount", "float", "Monthly amount in yuan.", min=0),
            _kd(),
        ),
        primary_key=("record_id",), event_date="start_date", person_column=None,
        household_column="household_id",
    ),
    Table(
        "claims", "medical_insurance", "Medical insurance claims: one row per settled claim.",
        (
            Column("claim_id", "str", "Claim number."),
            _rid(),
            Column("claim_date", "date", "Date of treatment (discharge for inpatient care)."),
            Column("care_type", "category", "Inpatient or outpatient.",
                   values=("inpatient", "outpatient")),
            Column("total_cost", "float", "Total cost in yuan.", min=0),
            Column("reimbursed", "float", "Amount paid by insurance in yuan.", min=0),
            Column("out_of_pocket", "float", "Amount paid by the patient in yuan.", min=0),
            Column("diagnosis_group", "category", "Diagnosis group.", values=DIAGNOSIS_GROUPS),
            Column("serious_illness", "bool", "Diagnosis is on the serious-illness list."),
            _kd(),
        ),
        primary_key=("claim_id",), event_date="claim_date",
    ),
    Table(
        "disability_certificates", "disability", "Disability certificates (残疾人证).",
        (
            Column("certificate_id", "str", "Certificate number."),
            _rid(),
            Column("category", "category", "Disability category.",
                   values=DISABILITY_CATEGORIES),
            Column("grade", "int", "Grade 1 (most severe) to 4.", min=1, max=4),
            Column("issue_date", "date", "Date the certificate was issued."),
            Column("revoked_date", "date", "Date revoked or superseded.", required=False),
            _kd(),
        ),
        primary_key=("certificate_id",), event_date="issue_date",
    ),
    Table(
        "enrolment", "education", "School enrolment spells.",
        (
            Column("enrolment_id", "str", "Enrolment record number."),
            _rid(),
            Column("school_level", "category", "School level.", values=SCHOOL_LEVELS),
            Column("enrol_date", "date", "Date of enrolment."),
            Column("dropout_date", "date", "Date the pupil dropped out, if so.", required=False),
            Column("education_assistance", "bool", "Pupil receives education assistance."),
            _kd(),
        ),
        primary_key=("enrolment_id",), event_date="enrol_date",
    ),
    Table(
        "attendance", "education", "Monthly attendance per enrolled pupil.",
        (
            _rid(),
            Column("month", "date", "First day of the month."),
            Column("school_days", "int", "School days in the month.", min=0, max=31),
            Column("absence_days", "int", "Days absent in the month.", min=0, max=31),
            _kd(),
        ),
        primary_key=("resident_id", "month"), event_date="month",
    ),
    Table(
        "unemployment", "hrss", "Unemployment registrations (失业登记).",
        (
            Column("registration_id", "str", "Registration number."),
            _rid(),
            Column("start_date", "date", "Date registered unemployed."),
            Column("end_date", "date", "Date the registration ended (re-employed or lapsed).",
                   required=False),
            _kd(),
        ),
        primary_key=("registration_id",), event_date="start_date",
    ),
    Table(
        "unemployment_benefits", "hrss", "Monthly unemployment benefit payments.",
        (
            _rid(),
            Column("month", "date", "First day of the month paid."),
            Column("amount", "float", "Benefit paid in yuan.", min=0),
            _kd(),
        ),
        primary_key=("resident_id", "month"), event_date="month",
    ),
    Table(
        "contributions", "hrss",
        "Monthly social-insurance contribution base (an income proxy) per insured worker.",
        (
            _rid(),
            Column("month", "date", "First day of the month."),
            Column("contribution_base", "float", "Contribution base in yuan.", min=0),
            _kd(),
        ),
        primary_key=("resident_id", "month"), event_date="month",
    ),
    Table(
        "pensions", "hrss", "Pension awards.",
        (
            Column("pension_id", "str", "Pension record number."),
            _rid(),
            Column("pension_type", "category", "Pension scheme.",
                   values=("employee", "resident")),
            Column("start_date", "date", "First month paid."),
            Column("monthly_amount", "float", "Monthly pension in yuan.", min=0),
            _kd(),
        ),
        primary_key=("pension_id",), event_date="start_date",
    ),
    Table(
        "vehicles", "economic", "Registered motor vehicles.",
        (
            Column("vehicle_id", "str", "Registration record number."),
            _rid("Resident ID number of the owner."),
            Column("registered_date", "date", "Date registered to this owner."),
            Column("deregistered_date", "date", "Date sold or scrapped.", required=False),
            Column("estimated_value", "float", "Estimated value in yuan.", min=0),
            _kd(),
        ),
        primary_key=("vehicle_id",), event_date="registered_date",
    ),
    Table(
        "real_estate", "economic", "Real-estate titles.",
        (
            Column("property_id", "str", "Title number."),
            _rid("Resident ID number of the owner."),
            Column("acquired_date", "date", "Date acquired."),
            Column("disposed_date", "date", "Date sold.", required=False),
            Column("floor_area", "float", "Floor area in square metres.", min=0),
            _kd(),
        ),
        primary_key=("property_id",), event_date="acquired_date",
    ),
    Table(
        "businesses", "economic", "Business registrations (individual or company).",
        (
            Column("business_id", "str", "Registration number."),
            _rid("Resident ID number of the owner or legal representative."),
            Column("registered_date", "date", "Date registered."),
            Column("deregistered_date", "date", "Date deregistered.", required=False),
            Column("registered_capital", "float", "Registered capital in yuan.", min=0),
            _kd(),
        ),
        primary_key=("business_id",), event_date="registered_date",
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def table(name: str) -> Table:
    return TABLES_BY_NAME[name]


_DTYPES = {
    "str": "string", "id": "string", "category": "string",
    "date": "datetime64[ns]", "int": "Int64", "float": "Float64", "bool": "boolean",
}


def pandera_schema(t: Table) -> pa.DataFrameSchema:
    """A pandera schema for the typed (already parsed) frame of table `t`.

    Checks carry the reason codes that the reject ledger records.
    """
    cols = {}
    for c in t.columns:
        checks: list[pa.Check] = []
        if c.values:
            checks.append(pa.Check.isin(list(c.values), name="invalid_category"))
        if c.min is not None:
            checks.append(pa.Check.ge(c.min, name="negative_amount" if c.min == 0
                                      else "out_of_range"))
        if c.max is not None:
            checks.append(pa.Check.le(c.max, name="out_of_range"))
        cols[c.name] = pa.Column(_DTYPES[c.kind], checks=checks, nullable=not c.required,
                                 coerce=False)
    return pa.DataFrameSchema(cols, strict=True, ordered=False, name=t.name)


def render_markdown() -> str:
    """The human-readable contract (docs/contracts.md is generated from this)."""
    lines = [
        "# Department data contracts",
        "",
        f"Schema version {SCHEMA_VERSION}. Generated from `safetynet/contracts.py` by "
        "`safetynet contracts`; do not edit by hand.",
        "",
        "Files are CSV (UTF-8 or GBK, header row, ISO dates `YYYY-MM-DD`) or Parquet, one "
        "per table, at the path given, with a `manifest.json` listing row counts and SHA-256 "
        "checksums. Every row carries the date its event happened and the date the "
        "department knew it (`knowledge_date`); later stages use a row only once both are "
        "on or before the as-of date.",
        "",
        "Columns marked *personal* are personal data: they are pseudonymized or moved to the "
        "identity table at ingest and never enter the feature store.",
        "",
    ]
    for dept, title in DEPARTMENTS.items():
        lines += [f"## {title}", ""]
        for t in (t for t in TABLES if t.department == dept):
            lines += [
                f"### `{t.file}`", "", t.description, "",
                f"Primary key: `{', '.join(t.primary_key)}`. Event date: `{t.event_date}`. "
                f"Knowledge date: `{t.knowledge_date}`.", "",
                "| column | type | required | rule | description |",
                "|---|---|---|---|---|",
            ]
            for c in t.columns:
                rule = []
                if c.values:
                    rule.append("one of " + ", ".join(f"`{v}`" for v in c.values))
                if c.min is not None:
                    rule.append(f">= {c.min:g}")
                if c.max is not None:
                    rule.append(f"<= {c.max:g}")
                if c.kind == "id":
                    rule.append("valid GB 11643-1999 check character; 15-digit legacy accepted")
                if c.personal:
                    rule.append("*personal*")
                lines.append(
                    f"| `{c.name}` | {c.kind} | {'yes' if c.required else 'no'} | "
                    f"{'; '.join(rule)} | {c.description} |"
                )
            lines.append("")
    return "\n".join(lines)
