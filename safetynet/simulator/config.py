"""Every default and rate of the synthetic city, in one frozen dataclass.

`docs/simulator.md` renders its rate table from the field metadata here (`render_config_table`),
and a test keeps the two in sync. Rates are per month unless the description says otherwise.
"""

from __future__ import annotations

import dataclasses
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def _f(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class District:
    """One district of the city: income level and local minimum living standards (dibao lines)."""

    name: str
    region_code: str  # GB/T 2260 code, the first 6 digits of resident ID numbers
    urban_share: float
    income_level: float  # multiplier on city-wide wages
    urban_line: float  # yuan per person per month
    rural_line: float
    streets: int
    communities_per_street: int


DEFAULT_DISTRICTS: tuple[District, ...] = (
    District("武昌区", "420106", 0.97, 1.15, 1050.0, 800.0, 6, 5),
    District("江岸区", "420102", 0.95, 1.10, 1050.0, 800.0, 6, 5),
    District("江汉区", "420103", 0.98, 1.00, 1000.0, 780.0, 5, 5),
    District("洪山区", "420111", 0.70, 0.95, 1000.0, 760.0, 6, 4),
    District("江夏区", "420115", 0.35, 0.80, 950.0, 750.0, 5, 6),
    District("新洲区", "420117", 0.20, 0.70, 900.0, 720.0, 5, 6),
)

# Household composition: name -> share of households.
DEFAULT_COMPOSITION: tuple[tuple[str, float], ...] = (
    ("elderly_alone", 0.10),
    ("elderly_couple", 0.12),
    ("adult_alone", 0.11),
    ("couple_no_children", 0.09),
    ("couple_children", 0.30),
    ("single_parent", 0.06),
    ("three_generation", 0.16),
    ("adult_siblings", 0.06),
)


@dataclass(frozen=True)
class SimulationConfig:
    """All parameters of `safetynet simulate`. Money in yuan per month."""

    # --- run -----------------------------------------------------------------------------
    households: int = _f(20_000, "Number of households.")
    months: int = _f(36, "Months in the observation window.")
    start: str = _f("2023-01", "First month of the window (YYYY-MM).")
    seed: int = _f(42, "Random seed; the same seed gives the same bytes.")
    burn_in_months: int = _f(12, "Months simulated before the window so spells are under way "
                             "(spell tables keep their earlier start dates; monthly tables "
                             "start at the window).")
    extract_lag_days: int = _f(20, "Extract date = last day of the window + this; rows not yet "
                               "known by then are not delivered.")
    # --- truth ---------------------------------------------------------------------------
    truth_replicates: int = _f(8, "Monte Carlo replicates R of the 6-month future per "
                               "household-month for onset_prob_6m.")
    truth_every: int = _f(1, "Compute onset_prob_6m every k-th window month (others are NaN).")
    truth_horizon: int = _f(6, "Horizon in months of the onset probability.")
    truth_chunk_households: int = _f(200_000, "Households per chunk in the Monte Carlo "
                                     "(bounds memory at R x chunk).")
    # --- population ----------------------------------------------------------------------
    districts: tuple[District, ...] = _f(DEFAULT_DISTRICTS, "Districts (see table below).")
    composition: tuple[tuple[str, float], ...] = _f(DEFAULT_COMPOSITION,
                                                    "Household types and their shares.")
    city_wage: float = _f(5200.0, "Median monthly wage of an urban formal worker (yuan).")
    rural_wage_factor: float = _f(0.70, "Rural wages relative to urban.")
    informal_wage_factor: float = _f(0.8, "Informal wages relative to formal.")
    wage_sigma: float = _f(0.45, "Log-normal sigma of wages between workers.")
    formal_share_urban: float = _f(0.72, "Share of urban workers in formal (insured) jobs.")
    formal_share_rural: float = _f(0.40, "Share of rural workers in formal (insured) jobs.")
    participation_male: float = _f(0.93, "Labour-force participation, men 18-59.")
    participation_female: float = _f(0.80, "Labour-force participation, women 18-54.")
    college_share: float = _f(0.45, "Share of 18-21-year-olds in tertiary education.")
    vocational_share: float = _f(0.35, "Share of 15-17-year-olds in vocational school.")
    disability_prevalence: float = _f(0.045, "Share of persons with a disability at start "
                                      "(rising with age).")
    other_income_median: float = _f(500.0, "Median latent other income per household "
                                    "(farm income, family transfers); never recorded.")
    elderly_support_median: float = _f(900.0, "Median latent support from children living "
                                       "elsewhere, households of elderly only.")
    other_income_zero_share: float = _f(0.35, "Share of households with no other income.")
    other_income_sigma: float = _f(0.5, "Log-normal sigma of other income.")
    buffer_months_median: float = _f(3.0, "Median savings buffer at start, in months of "
                                     "habitual consumption (latent, never recorded).")
    consumption_share: float = _f(0.82, "Habitual consumption as share of normal income.")
    vehicle_rate_urban: float = _f(0.32, "Households owning a vehicle (urban; scaled by income).")
    vehicle_rate_rural: float = _f(0.18, "Households owning a vehicle (rural).")
    property_rate_urban: float = _f(0.72, "Households with a registered property (urban).")
    property_rate_rural: float = _f(0.30, "Households with a registered property (rural).")
    business_rate: float = _f(0.07, "Workers running a registered business (self-employed).")
    employee_pension: float = _f(3400.0, "Median employee pension (urban formal history).")
    resident_pension_urban: float = _f(420.0, "Resident pension, urban.")
    resident_pension_rural: float = _f(230.0, "Resident pension, rural.")
    unemployment_benefit: float = _f(1500.0, "Monthly unemployment benefit (x district level).")
    benefit_months: int = _f(12, "Maximum months of unemployment benefit.")
    # --- latent dynamics -----------------------------------------------------------------
    job_loss_rate: float = _f(0.008, "Monthly job-loss hazard of a formal worker.")
    informal_job_loss_factor: float = _f(1.6, "Job-loss hazard multiplier for informal work.")
    downturn_start: int = _f(14, "Window month when a local downturn begins.")
    downturn_months: int = _f(8, "Length of the downturn.")
    downturn_factor: float = _f(1.8, "Job-loss multiplier (and 1/x re-employment) in downturn.")
    reemployment_rate: float = _f(0.13, "Monthly re-employment hazard (halved at 50+).")
    reemployment_wage_loss: float = _f(0.12, "Mean log wage loss on re-employment.")
    wage_shock_rate: float = _f(0.012, "Monthly chance of a pay cut (short time, lost hours).")
    wage_recovery: float = _f(0.15, "Share of a pay cut recovered each month.")
    register_unemployed_formal: float = _f(0.70, "Chance a formal worker registers unemployed.")
    register_unemployed_informal: float = _f(0.22, "Chance an informal worker registers.")
    death_gompertz_a: float = _f(2.5e-5, "Annual mortality = a * exp(b * age).")
    death_gompertz_b: float = _f(0.095, "Gompertz slope.")
    illness_death_factor: float = _f(4.0, "Mortality multiplier while seriously ill.")
    funeral_cost: float = _f(9000.0, "One-off cost to the household of a death.")
    serious_illness_rate: float = _f(3e-4, "Monthly serious-illness onset at age 40 or less.")
    serious_illness_age_slope: float = _f(4e-5, "Added monthly onset per year of age over 40.")
    serious_illness_cost: float = _f(42_000.0, "Mean total cost of the first hospitalisation.")
    chronic_months_mean: float = _f(10.0, "Mean months of continuing treatment.")
    chronic_monthly_cost: float = _f(2800.0, "Mean monthly treatment cost while ill.")
    stop_work_when_ill: float = _f(0.6, "Chance a seriously ill worker stops working.")
    reimbursement_employee: float = _f(0.70, "Insurance share of cost (employee insurance).")
    reimbursement_resident: float = _f(0.52, "Insurance share of cost (resident insurance).")
    uninsured_share: float = _f(0.04, "Persons without medical insurance (no claims recorded, "
                                "pay everything).")
    inpatient_rate: float = _f(0.0025, "Monthly ordinary hospitalisation (x3 at 65+).")
    inpatient_cost: float = _f(8000.0, "Mean total cost of an ordinary hospitalisation.")
    outpatient_rate: float = _f(0.05, "Monthly outpatient claim (x2.5 at 65+); recorded, "
                                "costs small and not part of the budget.")
    disability_onset_rate: float = _f(1.5e-4, "Monthly disability onset (+3e-5 per year over 50).")
    disability_worsen_rate: float = _f(0.004, "Monthly chance a disability worsens one grade.")
    disability_care_cost: float = _f(350.0, "Monthly care cost of grade-1 disability (/grade).")
    school_cost_urban: tuple[float, ...] = _f((700.0, 150.0, 220.0, 900.0, 800.0, 1600.0),
                                              "Monthly schooling cost per level (preschool.."
                                              "tertiary), urban; rural x0.6.")
    absence_base: float = _f(0.7, "Mean monthly absence days of a pupil.")
    absence_stress: float = _f(2.2, "Added mean absence days when the household is under stress.")
    dropout_rate: float = _f(0.0015, "Monthly dropout hazard, ages 14-17.")
    dropout_stress: float = _f(0.012, "Added dropout hazard under household stress.")
    vehicle_sale_rate: float = _f(0.15, "Monthly chance of selling a vehicle when in debt.")
    # --- hardship (truth) ----------------------------------------------------------------
    hazard_intercept: float = _f(-7.8, "Logit of the monthly hardship onset hazard at ease.")
    hazard_depth: float = _f(4.2, "Per unit of (1.2 - income ratio), clipped to [0, 1.5].")
    hazard_no_buffer: float = _f(0.8, "When the buffer is below one month of subsistence.")
    hazard_debt: float = _f(0.6, "When the buffer is negative (debt).")
    hazard_shortfall: float = _f(0.28, "Per consecutive month below the line (max 6).")
    hazard_vulnerable: float = _f(0.5, "Elderly living alone or severe disability in household.")
    hazard_ill: float = _f(0.5, "A member is seriously ill.")
    ema_weight: float = _f(0.5, "Weight of the current month in the smoothed income ratio.")
    recovery_ratio: float = _f(1.05, "Smoothed income ratio that counts as recovered ...")
    recovery_months: int = _f(2, "... for this many consecutive months (and no debt).")
    # --- help-seeking and assistance (observed outcomes) ---------------------------------
    apply_logit: float = _f(0.5, "Logit of applying for help on hardship onset (base).")
    apply_elderly_alone: float = _f(-1.3, "Elderly living alone.")
    apply_severe_disability: float = _f(-0.9, "A member with grade 1-2 disability.")
    apply_rural: float = _f(-0.6, "Rural household.")
    apply_prior_assistance: float = _f(1.0, "Was assisted before.")
    apply_propensity_sigma: float = _f(0.8, "Household-level logit noise of the propensity.")
    late_application_rate: float = _f(0.04, "Monthly application chance (x propensity) for "
                                      "households in hardship that did not apply at onset.")
    application_lag_mean: float = _f(1.5, "Mean months from onset to application decision.")
    approval_rate: float = _f(0.85, "Share of applications approved.")
    gradual_exit_months: int = _f(6, "Assistance continues this long after recovery.")
    temporary_months_max: int = _f(3, "Temporary assistance lasts 1..this months.")
    initial_assisted_share: float = _f(0.75, "Share of households in hardship at the start "
                                       "of the burn-in already on long-term assistance.")
    # --- observation model (messiness) ---------------------------------------------------
    lag_days: tuple[tuple[str, int, float], ...] = _f(
        (("civil_affairs", 5, 20.0), ("medical_insurance", 10, 35.0), ("disability", 15, 40.0),
         ("education", 3, 12.0), ("hrss", 7, 25.0), ("economic", 20, 60.0)),
        "Reporting lag per department: (department, minimum days, mean extra days, exponential).")
    contribution_floor_share: float = _f(0.15, "Formal workers whose employer declares the "
                                         "minimum contribution base (60% of the average wage).")
    disability_certified: float = _f(0.72, "Share of disabilities with a certificate.")
    duplicate_rate: float = _f(0.004, "Share of rows delivered twice.")
    bad_check_rate: float = _f(0.002, "Share of resident IDs with a typo breaking the check "
                               "character (not in the person registry).")
    legacy_id_rate: float = _f(0.15, "Share of persons born before 1980 that a department "
                               "(not the registry) records with the 15-digit number.")
    lowercase_x_rate: float = _f(0.2, "Share of IDs ending in X written with lower-case x.")
    out_of_range_rate: float = _f(5e-4, "Share of rows with an out-of-range value (negative "
                                  "cost, grade 5, absence > 31 days, negative base).")
    coverage_gap_rate: float = _f(0.02, "Share of (department, district, month) cells with no "
                                  "delivery for monthly and claim tables.")
    gbk_departments: tuple[str, ...] = _f(("civil_affairs", "disability"),
                                          "Departments whose CSV files are GBK-encoded.")

    def __post_init__(self) -> None:
        if self.households < 1 or self.months < 1:
            raise ValueError("households and months must be positive")
        if self.truth_horizon < 1 or self.truth_replicates < 1 or self.truth_every < 1:
            raise ValueError("truth_horizon, truth_replicates and truth_every must be >= 1")
        y, m = self.start.split("-")
        if not (len(y) == 4 and 1 <= int(m) <= 12):
            raise ValueError(f"start must be YYYY-MM, got {self.start!r}")
        if abs(sum(s for _, s in self.composition) - 1.0) > 1e-6:
            raise ValueError("composition shares must sum to 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_toml(cls, path: Path | None = None, **overrides: Any) -> SimulationConfig:
        """Defaults, then a TOML file of field names (rates), then explicit overrides."""
        values: dict[str, Any] = {}
        if path is not None:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
            known = {f.name for f in fields(cls)}
            unknown = set(raw) - known
            if unknown:
                raise ValueError(f"unknown simulation settings in {path}: {sorted(unknown)}")
            values.update(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "districts" in values and values["districts"] and isinstance(values["districts"][0],
                                                                        dict):
            values["districts"] = tuple(District(**d) for d in values["districts"])
        for k in ("composition", "lag_days", "school_cost_urban", "gbk_departments",
                  "districts"):
            if k in values:
                values[k] = tuple(tuple(v) if isinstance(v, list) else v for v in values[k])
        return cls(**values)


def render_config_table() -> str:
    """Markdown table of every parameter with its default (docs/simulator.md embeds it)."""
    cfg = SimulationConfig()
    lines = ["| parameter | default | meaning |", "|---|---|---|"]
    for f in fields(SimulationConfig):
        value = getattr(cfg, f.name)
        if f.name == "districts":
            shown = f"{len(value)} districts"
        elif f.name == "composition":
            shown = ", ".join(f"{n} {s:g}" for n, s in value)
        elif f.name == "lag_days":
            shown = ", ".join(f"{d} {a}+{b:g}" for d, a, b in value)
        else:
            shown = str(value)
        lines.append(f"| `{f.name}` | {shown} | {f.metadata['doc']} |")
    lines += ["", "| district | region code | urban share | income level | urban line | "
              "rural line | streets | communities/street |", "|---|---|---|---|---|---|---|---|"]
    for d in cfg.districts:
        lines.append(f"| {d.name} | {d.region_code} | {d.urban_share:g} | {d.income_level:g} | "
                     f"{d.urban_line:g} | {d.rural_line:g} | {d.streets} | "
                     f"{d.communities_per_street} |")
    return "\n".join(lines)


DOC_START, DOC_END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def update_doc(path: Path) -> None:
    """Rewrite the generated parameter table between the markers in docs/simulator.md."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(DOC_START, 1)
    _, tail = rest.split(DOC_END, 1)
    path.write_text(f"{head}{DOC_START}\n{render_config_table()}\n{DOC_END}{tail}",
                    encoding="utf-8")


if __name__ == "__main__":  # python -m safetynet.simulator.config docs/simulator.md
    update_doc(Path(sys.argv[1]))
