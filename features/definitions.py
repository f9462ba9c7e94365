"""Household feature definitions, declarative and engine-neutral.

Each `Feature` names its dimension, en/zh descriptions, an explicit missing-value rule, the
caseworker sentence templates (filled by `fill_sentence`, the one place a feature and a value
become a plain-language reason, used by serving), and either an
aggregation (`Agg`: source table, expression, aggregate, look-back window, filter) or a
derived expression over other features (`Derived`). `safetynet.features.compile` turns the
whole list into one SQL query (DuckDB dialect, transpilable to Spark with sqlglot); nothing
here is engine-specific Python.

Expressions are SQL. In an `Agg`, `s.` is the source row, `m.` the household member at the
as-of date (`m.age`, `m.sex`, `m.relation_to_head`; for household-level sources `m.` is the
household), and `{T}` the as-of date. `{T-n}` the as-of date minus n calendar
months. A `Derived` expression uses feature names and `as_of_date`; date arithmetic comes from
`safetynet.features.sqlfn` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .sqlfn import month_diff, safe_ratio

Dimension = Literal["age_structure", "economic_status", "health", "disability", "education",
                    "employment", "assets", "assistance_history"]
DIMENSIONS: tuple[str, ...] = ("age_structure", "economic_status", "health", "disability",
                               "education", "employment", "assets", "assistance_history")
Role = Literal["model", "evidence", "audit"]
DType = Literal["int", "float", "flag", "date", "str"]
Window = int | tuple[int, int] | None


@dataclass(frozen=True)
class Missing:
    """What a household with no qualifying record gets, and why."""

    rule: Literal["zero", "null", "constant"]
    value: float | None = None
    reason: str = ""

    def describe(self) -> str:
        text = {"zero": "0", "null": "kept NULL (missing)",
                "constant": f"constant {self.value:g}" if self.value is not None else ""}[self.rule]
        return f"{text}: {self.reason}" if self.reason else text


ZERO = Missing("zero", reason="no record means none")
NULL = Missing("null", reason="undefined without the underlying record; the model sees "
               "missing")


@dataclass(frozen=True)
class Source:
    """How a source table joins to households at an as-of date."""

    table: str
    join: Literal["person", "household", "members"]
    event: str                    # the table's event date (rows with event > T are never used)
    end: str | None = None        # end of a spell (NULL or > T means active at T)
    extra: tuple[tuple[str, str], ...] = ()  # window columns computed per (as-of date, row)


@dataclass(frozen=True)
class Agg:
    table: str
    agg: Literal["sum", "count", "count_distinct", "max", "min", "members"]
    expr: str = "1"               # ignored by "count" and "members"
    window: Window = None         # months back on `on` (default: the source's event date)
    on: str | None = None
    active: bool = False          # only spells active at the as-of date
    where: str | None = None
    # Person-level sources aggregate per member first, then across members with `across`
    # (default: sum for sum/count/members, max for max, min for min). "members" counts the
    # members with at least one qualifying row.
    across: Literal["sum", "max", "min"] | None = None


@dataclass(frozen=True)
class Derived:
    expr: str


@dataclass(frozen=True)
class Feature:
    name: str
    dimension: Dimension
    description_en: str
    description_zh: str
    missing: Missing
    template_en: str
    template_zh: str
    spec: Agg | Derived
    dtype: DType = "int"
    role: Role = "model"

    @property
    def text(self) -> FeatureText:
        return FeatureText(self.name, self.template_en, self.template_zh, self.dimension)

    def sentence(self, value: object, lang: str = "en") -> str:
        """The caseworker sentence for this value (`lang` is "en" or "zh")."""
        return fill_sentence(self.text, value, lang)


T = "{T}"
# Monthly departmental series arrive late (contributions and benefits up to ~3 months,
# attendance ~1 month after the month; in the simulated city 90% of contribution rows are known
# 93 days after the month starts, 99% after 150). Their windows end that many months before
# T, so "the last 3 months" means the 3 latest months normally fully reported by T, and trends
# do not compare an incomplete recent window with a complete earlier one.
HRSS_LAG = 3
SCHOOL_LAG = 1


def reported(months: int, lag: int, offset: int = 0) -> tuple[int, int]:
    """Window of `months` months ending `lag + offset` months before T."""
    return (months + lag + offset, lag + offset)


SERIOUS = "s.serious_illness"
WORKING_AGE = "m.age BETWEEN 18 AND 59"

SOURCES: dict[str, Source] = {s.table: s for s in (
    Source("members", "members", event="registered_date"),
    Source("persons", "household", event="registered_date"),
    Source("assistance", "household", event="start_date", end="end_date"),
    Source("claims", "person", event="claim_date"),
    Source("disability_certificates", "person", event="issue_date", end="revoked_date", extra=(
        ("prev_grade", "LAG(s.grade) OVER (PARTITION BY m.as_of_date, s.person_key "
                       "ORDER BY s.issue_date, s.certificate_id)"),
    )),
    Source("enrolment", "person", event="enrol_date", end="dropout_date"),
    Source("attendance", "person", event="month"),
    Source("unemployment", "person", event="start_date", end="end_date"),
    Source("unemployment_benefits", "person", event="month"),
    Source("contributions", "person", event="month"),
    Source("pensions", "person", event="start_date"),
    Source("vehicles", "person", event="registered_date", end="deregistered_date"),
    Source("real_estate", "person", event="acquired_date", end="disposed_date"),
    Source("businesses", "person", event="registered_date", end="deregistered_date"),
)}


def _f(name: str, dimension: Dimension, en: str, zh: str, missing: Missing, t_en: str, t_zh: str,
       spec: Agg | Derived, dtype: DType = "int", role: Role = "model") -> Feature:
    return Feature(name, dimension, en, zh, missing, t_en, t_zh, spec, dtype, role)


def _members(name: str, lo: int, hi: int | None, en: str, zh: str) -> Feature:
    cond = f"m.age >= {lo}" + (f" AND m.age <= {hi}" if hi is not None else "")
    return _f(name, "age_structure", f"Members aged {en}.", f"{zh}的家庭成员人数。", ZERO,
              f"{{value:.0f}} household member(s) aged {en}.",
              f"家庭中有{{value:.0f}}名{zh}的成员。",
              Agg("members", "count", where=cond))


def _windows(base: str, months: tuple[int, ...], make) -> list[Feature]:
    return [make(f"{base}_{w}m", w) for w in months]


# --- age structure ------------------------------------------------------------------------
AGE = [
    _f("household_size", "age_structure", "Living registered members at the as-of date.",
       "截至观察日在册且在世的家庭成员人数。", ZERO,
       "The household has {value:.0f} registered member(s).", "家庭在册成员{value:.0f}人。",
       Agg("members", "count")),
    _members("members_age_0_5", 0, 5, "0-5", "0至5岁"),
    _members("members_age_6_17", 6, 17, "6-17", "6至17岁"),
    _members("members_age_0_17", 0, 17, "under 18", "未满18岁"),
    _members("members_age_18_59", 18, 59, "18-59 (working age)", "18至59岁（劳动年龄）"),
    _members("members_age_60_plus", 60, None, "60 or over", "60岁及以上"),
    _members("members_age_80_plus", 80, None, "80 or over", "80岁及以上"),
    _f("head_age", "age_structure", "Age of the household head.", "户主年龄。",
       Missing("null", reason="no head registered"),
       "The household head is {value:.0f} years old.", "户主{value:.0f}岁。",
       Agg("members", "max", "m.age", where="m.relation_to_head = 'head'")),
    _f("oldest_member_age", "age_structure", "Age of the oldest member.", "最年长成员的年龄。",
       NULL, "The oldest member is {value:.0f} years old.", "最年长成员{value:.0f}岁。",
       Agg("members", "max", "m.age")),
    _f("youngest_member_age", "age_structure", "Age of the youngest member.",
       "最年幼成员的年龄。", NULL, "The youngest member is {value:.0f} years old.",
       "最年幼成员{value:.0f}岁。", Agg("members", "min", "m.age")),
    _f("dependency_ratio", "age_structure",
       "Members under 18 or 60+ per working-age member (18-59).",
       "未满18岁及60岁以上成员数与劳动年龄（18至59岁）成员数之比。",
       Missing("null", reason="no working-age member (see no_working_age_member)"),
       "There are {value:.1f} dependants per working-age member.",
       "每名劳动年龄成员需抚养{value:.1f}人。", Derived(safe_ratio(
           "members_age_0_17 + members_age_60_plus", "members_age_18_59")), "float"),
    _f("no_working_age_member", "age_structure", "1 if no member is aged 18-59.",
       "家庭无18至59岁成员时为1。", ZERO,
       "No member of the household is of working age (18-59).",
       "家庭中没有劳动年龄（18至59岁）成员。",
       Derived("CASE WHEN members_age_18_59 = 0 THEN 1 ELSE 0 END"), "flag"),
    _f("elderly_only_household", "age_structure", "1 if every member is 60 or over.",
       "所有成员均为60岁及以上时为1。", ZERO,
       "Every member of the household is 60 or over.", "家庭成员均为60岁及以上老人。",
       Derived("CASE WHEN household_size > 0 AND members_age_60_plus = household_size "
               "THEN 1 ELSE 0 END"), "flag"),
    _f("elderly_living_alone", "age_structure", "1 if a single person aged 60+ lives alone.",
       "60岁及以上老人独居时为1。", ZERO, "An elderly person ({value} = yes) lives alone.",
       "老人独居（{value}=是）。",
       Derived("CASE WHEN household_size = 1 AND members_age_60_plus = 1 THEN 1 ELSE 0 END"),
       "flag"),
    _f("children_without_working_age_adult", "age_structure",
       "1 if there are children under 18 and no member aged 18-59.",
       "有未成年子女且无18至59岁成员时为1。", ZERO,
       "Children live in the household without any working-age adult.",
       "家庭有未成年人但没有劳动年龄成年人。",
       Derived("CASE WHEN members_age_0_17 > 0 AND members_age_18_59 = 0 THEN 1 ELSE 0 END"),
       "flag"),
    _f("members_joined_12m", "age_structure", "Members registered in the last 12 months.",
       "近12个月新登记的成员人数。", ZERO,
       "{value:.0f} member(s) joined the household in the last 12 months.",
       "近12个月家庭新增{value:.0f}名成员。",
       Agg("members", "count", on="m.registered_date", window=12)),
    _f("deaths_12m", "age_structure", "Members who died in the last 12 months.",
       "近12个月去世的家庭成员人数。", ZERO,
       "{value:.0f} household member(s) died in the last 12 months.",
       "近12个月家庭有{value:.0f}名成员去世。",
       Agg("persons", "count", on="s.death_date", window=12)),
]

# --- economic status ----------------------------------------------------------------------
ECON = [
    _f("contribution_base_1m", "economic_status",
       "Household social-insurance contribution base in the latest reported month (yuan).",
       "最近一个已报送月份的家庭社保缴费基数合计（元）。", ZERO,
       "The latest reported month's combined contribution base was {value:,.0f} yuan.",
       "最近一个已报送月份家庭社保缴费基数合计{value:,.0f}元。",
       Agg("contributions", "sum", "s.contribution_base", window=reported(1, HRSS_LAG)), "float"),
    _f("contribution_base_3m_avg", "economic_status",
       "Average monthly household contribution base over the 3 latest reported months (yuan).",
       "最近3个已报送月份的家庭月均社保缴费基数（元）。", ZERO,
       "The combined contribution base averaged {value:,.0f} yuan a month over 3 months.",
       "近3个月家庭月均缴费基数{value:,.0f}元。",
       Agg("contributions", "sum", "s.contribution_base / 3.0",
           window=reported(3, HRSS_LAG)), "float"),
    _f("contribution_base_prev3m_avg", "economic_status",
       "Average monthly household contribution base, the 3 reported months before those (yuan).",
       "再往前3个已报送月份的家庭月均社保缴费基数（元）。", ZERO,
       "Three months earlier the contribution base averaged {value:,.0f} yuan a month.",
       "此前3个月家庭月均缴费基数{value:,.0f}元。",
       Agg("contributions", "sum", "s.contribution_base / 3.0",
           window=reported(3, HRSS_LAG, offset=3)), "float"),
    _f("contribution_base_12m_avg", "economic_status",
       "Average monthly household contribution base over 12 months (yuan).",
       "近12个月家庭月均社保缴费基数（元）。", ZERO,
       "Over 12 months the contribution base averaged {value:,.0f} yuan a month.",
       "近12个月家庭月均缴费基数{value:,.0f}元。",
       Agg("contributions", "sum", "s.contribution_base / 12.0",
           window=reported(12, HRSS_LAG)), "float"),
    _f("contribution_base_trend", "economic_status",
       "Relative change of the contribution base: 3 latest reported months vs the 3 before.",
       "近3个月与此前3个月相比家庭缴费基数的相对变化。",
       Missing("null", reason="no contributions in the earlier 3 months"),
       "The household's contribution base changed by {value:+.0%} against 3 months earlier.",
       "家庭缴费基数较此前3个月变化{value:+.0%}。",
       Derived(safe_ratio("contribution_base_3m_avg - contribution_base_prev3m_avg",
                          "contribution_base_prev3m_avg")), "float"),
    _f("contributors_1m", "economic_status",
       "Members with a contribution in the latest reported month.",
       "最近一个已报送月份有社保缴费记录的成员人数。", ZERO,
       "{value:.0f} member(s) paid social insurance last month.",
       "上月有{value:.0f}名成员缴纳社保。",
       Agg("contributions", "members", window=reported(1, HRSS_LAG))),
    _f("contributors_12m", "economic_status",
       "Members with any contribution in the 12 latest reported months.",
       "近12个月有社保缴费记录的成员人数。", ZERO,
       "{value:.0f} member(s) paid social insurance in the last 12 months.",
       "近12个月有{value:.0f}名成员缴纳社保。",
       Agg("contributions", "members", window=reported(12, HRSS_LAG))),
    _f("working_age_earners_3m", "economic_status",
       "Working-age members (18-59) with a contribution in the 3 latest reported months.",
       "近3个月有社保缴费记录的劳动年龄成员人数。", ZERO,
       "{value:.0f} working-age member(s) had insured work in the last 3 months.",
       "近3个月有{value:.0f}名劳动年龄成员有参保就业。",
       Agg("contributions", "members", window=reported(3, HRSS_LAG), where=WORKING_AGE)),
    _f("contribution_months_12m", "economic_status",
       "Most of the 12 latest reported months in which one member had a contribution.",
       "近12个月中缴费月数最多的成员的缴费月数。", ZERO,
       "The best-covered member paid social insurance in {value:.0f} of the last 12 months.",
       "近12个月家庭成员最多缴纳了{value:.0f}个月社保。",
       Agg("contributions", "count", window=reported(12, HRSS_LAG), across="max")),
    _f("months_without_contribution_12m", "economic_status",
       "Months of the last 12 without a contribution, for the household's best-covered member.",
       "近12个月中缴费最多的成员未缴纳社保的月数。", ZERO,
       "The household's best-covered member paid no social insurance in {value:.0f} of the "
       "last 12 months.", "近12个月中家庭成员有{value:.0f}个月未缴纳社保（按缴费最多的成员计）。",
       Derived("12 - contribution_months_12m")),
    _f("pension_monthly", "economic_status", "Monthly pensions of all members (yuan).",
       "家庭成员每月养老金合计（元）。", ZERO,
       "Members receive {value:,.0f} yuan of pension a month.",
       "家庭成员每月领取养老金{value:,.0f}元。",
       Agg("pensions", "sum", "s.monthly_amount"), "float"),
    _f("pensioners", "economic_status", "Members receiving a pension.",
       "领取养老金的成员人数。", ZERO, "{value:.0f} member(s) receive a pension.",
       "有{value:.0f}名成员领取养老金。", Agg("pensions", "members")),
    _f("employee_pensioners", "economic_status",
       "Members receiving an employee (not resident) pension.",
       "领取职工养老金的成员人数。", ZERO, "{value:.0f} member(s) receive an employee pension.",
       "有{value:.0f}名成员领取职工养老金。",
       Agg("pensions", "members", where="s.pension_type = 'employee'")),
    _f("income_proxy_monthly", "economic_status",
       "Monthly income proxy: contribution base (3-month average) + pensions + unemployment "
       "benefit (3-month average), yuan.",
       "月收入估计：近3个月月均缴费基数＋养老金＋近3个月月均失业金（元）。", ZERO,
       "The household's estimated monthly income is {value:,.0f} yuan.",
       "家庭月收入估计为{value:,.0f}元。",
       Derived("contribution_base_3m_avg + pension_monthly + unemployment_benefit_3m / 3.0"),
       "float"),
    _f("income_per_capita", "economic_status", "Monthly income proxy per member (yuan).",
       "人均月收入估计（元）。", NULL,
       "Estimated income is {value:,.0f} yuan per person per month.",
       "人均月收入估计为{value:,.0f}元。",
       Derived(safe_ratio("income_proxy_monthly", "household_size")), "float"),
    _f("children_without_earning_adult", "economic_status",
       "1 if there are children under 18 and no working-age member had insured work in the "
       "last 3 months.", "有未成年人且近3个月无劳动年龄成员参保就业时为1。", ZERO,
       "Children live in the household and no working-age adult had insured work recently.",
       "家庭有未成年人，且近3个月没有劳动年龄成年人参保就业。",
       Derived("CASE WHEN members_age_0_17 > 0 AND working_age_earners_3m = 0 THEN 1 ELSE 0 "
               "END"), "flag"),
]


# --- health -------------------------------------------------------------------------------
def _claims(w: int) -> Feature:
    return _f(f"claims_{w}m", "health", f"Medical insurance claims in the last {w} months.",
              f"近{w}个月医保结算次数。", ZERO,
              f"Members had {{value:.0f}} medical claim(s) in the last {w} months.",
              f"近{w}个月家庭成员医保结算{{value:.0f}}次。", Agg("claims", "count", window=w))


def _serious(w: int) -> Feature:
    return _f(f"serious_illness_claims_{w}m", "health",
              f"Claims for a serious illness in the last {w} months.",
              f"近{w}个月重特大疾病医保结算次数。", ZERO,
              f"{{value:.0f}} claim(s) for a serious illness in the last {w} months.",
              f"近{w}个月有{{value:.0f}}次重特大疾病就医结算。",
              Agg("claims", "count", window=w, where=SERIOUS))


def _oop(w: int) -> Feature:
    return _f(f"oop_{w}m", "health", f"Out-of-pocket medical spending in {w} months (yuan).",
              f"近{w}个月医疗自付费用（元）。", ZERO,
              f"Out-of-pocket medical spending in the last {w} months was {{value:,.0f}} yuan.",
              f"近{w}个月医疗自付费用{{value:,.0f}}元。",
              Agg("claims", "sum", "s.out_of_pocket", window=w), "float")


def _inpatient(w: int) -> Feature:
    return _f(f"inpatient_episodes_{w}m", "health", f"Inpatient stays in the last {w} months.",
              f"近{w}个月住院次数。", ZERO,
              f"Members were admitted to hospital {{value:.0f}} time(s) in {w} months.",
              f"近{w}个月家庭成员住院{{value:.0f}}次。",
              Agg("claims", "count", window=w, where="s.care_type = 'inpatient'"))


HEALTH = [
    *_windows("claims", (3, 12), lambda n, w: _claims(w)),
    *_windows("serious_illness_claims", (1, 3, 6, 12), lambda n, w: _serious(w)),
    *_windows("inpatient_episodes", (3, 12), lambda n, w: _inpatient(w)),
    *_windows("oop", (1, 3, 6, 12), lambda n, w: _oop(w)),
    _f("members_serious_illness_12m", "health",
       "Members with a serious-illness claim in 12 months.",
       "近12个月有重特大疾病就医记录的成员人数。", ZERO,
       "{value:.0f} member(s) were treated for a serious illness in the last 12 months.",
       "近12个月有{value:.0f}名成员因重特大疾病就医。",
       Agg("claims", "members", window=12, where=SERIOUS)),
    _f("total_medical_cost_12m", "health", "Total medical cost in 12 months (yuan).",
       "近12个月医疗总费用（元）。", ZERO,
       "Medical treatment cost {value:,.0f} yuan in total over 12 months.",
       "近12个月医疗总费用{value:,.0f}元。",
       Agg("claims", "sum", "s.total_cost", window=12), "float"),
    _f("oop_3m_to_income", "health",
       "Out-of-pocket spending over 3 months divided by monthly income proxy.",
       "近3个月医疗自付费用与家庭月收入估计之比。",
       Missing("null", reason="no income recorded (see oop_with_no_income)"),
       "Out-of-pocket medical spending in the last 3 months was {value:.1f}× the "
       "household's monthly income.", "近3个月医疗自付费用是家庭月收入的{value:.1f}倍。",
       Derived(safe_ratio("oop_3m", "income_proxy_monthly")), "float"),
    _f("oop_12m_to_income", "health",
       "Out-of-pocket spending over 12 months divided by 12 months of income proxy.",
       "近12个月医疗自付费用与家庭12个月收入估计之比。",
       Missing("null", reason="no income recorded (see oop_with_no_income)"),
       "Out-of-pocket medical spending over 12 months was {value:.0%} of the household's "
       "income.", "近12个月医疗自付费用占家庭收入的{value:.0%}。",
       Derived(safe_ratio("oop_12m", "income_proxy_monthly * 12")), "float"),
    _f("oop_with_no_income", "health",
       "1 if there was out-of-pocket spending in 3 months but no recorded income.",
       "近3个月有医疗自付费用但无收入记录时为1。", ZERO,
       "The household paid for medical care out of pocket with no recorded income.",
       "家庭无收入记录却自付了医疗费用。",
       Derived("CASE WHEN oop_3m > 0 AND income_proxy_monthly = 0 THEN 1 ELSE 0 END"), "flag"),
    _f("last_serious_claim_date", "health", "Date of the latest serious-illness claim.",
       "最近一次重特大疾病就医日期。", NULL,
       "The latest serious-illness treatment was on {value}.",
       "最近一次重特大疾病就医日期为{value}。",
       Agg("claims", "max", "s.claim_date", where=SERIOUS), "date", "evidence"),
    _f("months_since_serious_claim", "health",
       "Calendar months since the latest serious-illness claim.",
       "距最近一次重特大疾病就医的月数。", Missing("null", reason="never treated for a "
                                                  "serious illness"),
       "The latest serious-illness treatment was {value:.0f} month(s) ago.",
       "最近一次重特大疾病就医在{value:.0f}个月前。",
       Derived(month_diff("last_serious_claim_date", "as_of_date"))),
]


# --- disability ---------------------------------------------------------------------------
def _new_disab(w: int) -> Feature:
    return _f(f"new_or_worsened_disability_{w}m", "disability",
              f"Certificates issued in {w} months that are new or more severe than the "
              "member's previous one.", f"近{w}个月新发或等级加重的残疾证数。", ZERO,
              f"{{value:.0f}} new or more severe disability certificate(s) in {w} months.",
              f"近{w}个月新发或等级加重的残疾证{{value:.0f}}个。",
              Agg("disability_certificates", "count", window=w,
                  where="(s.prev_grade IS NULL OR s.grade < s.prev_grade)"))


DISAB = [
    _f("disabled_members", "disability", "Members holding a valid disability certificate.",
       "持有效残疾证的成员人数。", ZERO, "{value:.0f} member(s) hold a disability certificate.",
       "有{value:.0f}名成员持有残疾证。",
       Agg("disability_certificates", "members", active=True)),
    _f("severely_disabled_members", "disability",
       "Members with a valid grade 1 or 2 (severe) certificate.",
       "持有效一、二级（重度）残疾证的成员人数。", ZERO,
       "{value:.0f} member(s) have a severe (grade 1-2) disability.",
       "有{value:.0f}名成员为一、二级重度残疾。",
       Agg("disability_certificates", "members", active=True,
           where="s.grade <= 2")),
    _f("severely_disabled_working_age", "disability",
       "Working-age members (18-59) with a severe disability.",
       "重度残疾的劳动年龄成员人数。", ZERO,
       "{value:.0f} working-age member(s) have a severe disability.",
       "有{value:.0f}名劳动年龄成员为重度残疾。",
       Agg("disability_certificates", "members", active=True,
           where=f"s.grade <= 2 AND {WORKING_AGE}")),
    _f("worst_disability_grade", "disability",
       "Most severe valid disability grade in the household (1 = most severe; 5 = none).",
       "家庭成员有效残疾证的最重等级（1为最重，5表示无）。",
       Missing("constant", 5, "no valid certificate; 5 sorts after the mildest grade 4"),
       "The most severe disability in the household is grade {value:.0f}.",
       "家庭成员中最重的残疾等级为{value:.0f}级。",
       Agg("disability_certificates", "min", "s.grade", active=True)),
    _f("intellectual_mental_disabled", "disability",
       "Members with a valid intellectual, mental or multiple disability certificate.",
       "持有效智力、精神或多重残疾证的成员人数。", ZERO,
       "{value:.0f} member(s) have an intellectual, mental or multiple disability.",
       "有{value:.0f}名成员为智力、精神或多重残疾。",
       Agg("disability_certificates", "members", active=True,
           where="s.category IN ('intellectual', 'mental', 'multiple')")),
    *_windows("new_or_worsened_disability", (3, 6, 12), lambda n, w: _new_disab(w)),
    _f("last_disability_change_date", "disability",
       "Issue date of the latest new or more severe certificate.",
       "最近一次新发或等级加重残疾证的发证日期。", NULL,
       "A new or more severe disability certificate was issued on {value}.",
       "{value}新发或加重了残疾证。",
       Agg("disability_certificates", "max", "s.issue_date",
           where="(s.prev_grade IS NULL OR s.grade < s.prev_grade)"), "date", "evidence"),
    _f("able_working_age_adults", "disability",
       "Working-age members (18-59) without a severe disability.",
       "无重度残疾的劳动年龄成员人数。", ZERO,
       "{value:.0f} working-age member(s) without a severe disability.",
       "有{value:.0f}名无重度残疾的劳动年龄成员。",
       Derived("members_age_18_59 - severely_disabled_working_age")),
]


# --- education ----------------------------------------------------------------------------
def _absence(w: int) -> Feature:
    return _f(f"absence_days_{w}m", "education",
              f"School days missed by all pupils in the {w} latest reported month(s).",
              f"近{w}个月学生缺课天数合计。", ZERO,
              f"The household's pupils missed {{value:.0f}} school day(s) in {w} months.",
              f"近{w}个月家中学生共缺课{{value:.0f}}天。",
              Agg("attendance", "sum", "s.absence_days", window=reported(w, SCHOOL_LAG)))


def _dropouts(w: int) -> Feature:
    return _f(f"dropouts_{w}m", "education", f"Pupils who dropped out in {w} months.",
              f"近{w}个月辍学的学生人数。", ZERO,
              f"{{value:.0f}} pupil(s) dropped out of school in the last {w} months.",
              f"近{w}个月有{{value:.0f}}名学生辍学。",
              Agg("enrolment", "members", on="s.dropout_date", window=w))


EDU = [
    _f("pupils_enrolled", "education", "Members enrolled in school at the as-of date.",
       "截至观察日在校学生人数。", ZERO, "{value:.0f} member(s) are in school.",
       "有{value:.0f}名成员在校就读。",
       Agg("enrolment", "members", active=True)),
    _f("pupils_senior_or_tertiary", "education",
       "Members enrolled in senior secondary, vocational or tertiary education.",
       "就读高中、职业教育或高等教育的成员人数。", ZERO,
       "{value:.0f} member(s) are in senior secondary, vocational or higher education.",
       "有{value:.0f}名成员就读高中、职业或高等教育。",
       Agg("enrolment", "members", active=True,
           where="s.school_level IN ('senior_secondary', 'vocational', 'tertiary')")),
    _f("pupils_education_assistance", "education",
       "Enrolled members receiving education assistance.", "享受教育资助的在校学生人数。", ZERO,
       "{value:.0f} pupil(s) receive education assistance.", "有{value:.0f}名学生享受教育资助。",
       Agg("enrolment", "members", active=True,
           where="s.education_assistance")),
    *_windows("absence_days", (1, 3, 6), lambda n, w: _absence(w)),
    _f("school_days_3m", "education", "School days of all pupils in the 3 latest reported months.",
       "近3个月学生应出勤天数合计。", ZERO, "Pupils had {value:.0f} school day(s) in 3 months.",
       "近3个月学生应出勤{value:.0f}天。",
       Agg("attendance", "sum", "s.school_days", window=reported(3, SCHOOL_LAG))),
    _f("absence_rate_3m", "education", "Share of school days missed in 3 months.",
       "近3个月缺课天数占应出勤天数的比例。", Missing("null", reason="no pupil in school"),
       "Pupils missed {value:.0%} of school days in the last 3 months.",
       "近3个月学生缺课率为{value:.0%}。",
       Derived(safe_ratio("absence_days_3m", "school_days_3m")), "float"),
    _f("max_pupil_absence_3m", "education",
       "Most school days one pupil missed in the 3 latest reported months.",
       "近3个月单个学生最多缺课天数。", ZERO,
       "One pupil missed {value:.0f} school day(s) in the last 3 months.",
       "近3个月有学生缺课{value:.0f}天。",
       Agg("attendance", "sum", "s.absence_days", window=reported(3, SCHOOL_LAG),
           across="max")),
    _f("pupils_absent_5plus_1m", "education", "Pupils absent 5+ days in the latest reported month.",
       "上月缺课5天及以上的学生人数。", ZERO,
       "{value:.0f} pupil(s) missed 5 or more days of school last month.",
       "上月有{value:.0f}名学生缺课5天及以上。",
       Agg("attendance", "members", window=reported(1, SCHOOL_LAG),
           where="s.absence_days >= 5")),
    *_windows("dropouts", (3, 12), lambda n, w: _dropouts(w)),
    _f("last_dropout_date", "education", "Date of the latest dropout.", "最近一次辍学日期。",
       NULL, "A pupil dropped out on {value}.", "{value}有学生辍学。",
       Agg("enrolment", "max", "s.dropout_date", on="s.dropout_date"),
       "date", "evidence"),
]


# --- employment ---------------------------------------------------------------------------
EMP = [
    _f("unemployed_members", "employment", "Members registered unemployed at the as-of date.",
       "截至观察日登记失业的成员人数。", ZERO,
       "{value:.0f} member(s) are registered unemployed.", "有{value:.0f}名成员登记失业。",
       Agg("unemployment", "members", active=True)),
    _f("unemployed_working_age", "employment",
       "Working-age members (18-59) registered unemployed at the as-of date.",
       "登记失业的劳动年龄成员人数。", ZERO,
       "{value:.0f} working-age member(s) are registered unemployed.",
       "有{value:.0f}名劳动年龄成员登记失业。",
       Agg("unemployment", "members", active=True, where=WORKING_AGE)),
    _f("unemployment_spells_12m", "employment",
       "Unemployment registrations started in the last 12 months.",
       "近12个月新增失业登记次数。", ZERO,
       "Members registered as unemployed {value:.0f} time(s) in the last 12 months.",
       "近12个月家庭成员登记失业{value:.0f}次。",
       Agg("unemployment", "count", window=12)),
    _f("unemployment_months_12m", "employment",
       "Member-months registered unemployed in the last 12 months.",
       "近12个月家庭成员登记失业的累计月数。", ZERO,
       "Members were registered unemployed for {value:.0f} month(s) in total over 12 months.",
       "近12个月家庭成员累计登记失业{value:.0f}个月。",
       Agg("unemployment", "sum",
           "GREATEST(0, " + month_diff("GREATEST(s.start_date, {T-12})",
                                       f"LEAST(COALESCE(s.end_date, {T}), {T})") + ")",
           where="(s.end_date IS NULL OR s.end_date > {T-12})")),
    _f("current_unemployment_months", "employment",
       "Longest current unemployment registration (calendar months).",
       "当前最长的失业登记持续月数。", Missing("null", reason="nobody registered unemployed"),
       "A member has been registered unemployed for {value:.0f} month(s).",
       "有成员已登记失业{value:.0f}个月。",
       Agg("unemployment", "max", month_diff("s.start_date", T), active=True)),
    _f("current_unemployment_start", "employment",
       "Start of the latest current unemployment registration.",
       "当前失业登记的最近开始日期。", NULL,
       "A member registered as unemployed on {value}.", "有成员于{value}登记失业。",
       Agg("unemployment", "max", "s.start_date", active=True, where=WORKING_AGE),
       "date", "evidence"),
    _f("unemployment_benefit_3m", "employment",
       "Unemployment benefit paid in the 3 latest reported months (yuan).",
       "近3个月领取的失业保险金（元）。", ZERO,
       "Members received {value:,.0f} yuan of unemployment benefit in 3 months.",
       "近3个月家庭成员领取失业金{value:,.0f}元。",
       Agg("unemployment_benefits", "sum", "s.amount", window=reported(3, HRSS_LAG)), "float"),
    _f("benefit_recipients_1m", "employment",
       "Members paid unemployment benefit in the latest reported month.",
       "最近一个已报送月份领取失业金的成员人数。", ZERO,
       "{value:.0f} member(s) received unemployment benefit last month.",
       "上月有{value:.0f}名成员领取失业金。",
       Agg("unemployment_benefits", "members", window=reported(1, HRSS_LAG))),
]


# --- assets -------------------------------------------------------------------------------
def _asset(name: str, table: str, agg: str, expr: str, en: str, zh: str, t_en: str, t_zh: str,
           dtype: DType = "int", **kw) -> Feature:
    return _f(name, "assets", en, zh, ZERO, t_en, t_zh,
              Agg(table, agg, expr, **kw), dtype)  # type: ignore[arg-type]


ASSETS = [
    _asset("vehicles", "vehicles", "count", "1", "Vehicles registered to members now.",
           "成员名下现有机动车数量。", "Members own {value:.0f} vehicle(s).",
           "成员名下有{value:.0f}辆机动车。", active=True),
    _asset("vehicle_value", "vehicles", "sum", "s.estimated_value",
           "Estimated value of the members' vehicles (yuan).", "成员名下机动车估值合计（元）。",
           "The members' vehicles are worth about {value:,.0f} yuan.",
           "成员名下机动车估值约{value:,.0f}元。", "float", active=True),
    _asset("properties", "real_estate", "count", "1", "Real-estate titles held now.",
           "成员名下现有房产数量。", "Members hold {value:.0f} property title(s).",
           "成员名下有{value:.0f}处房产。", active=True),
    _asset("property_area", "real_estate", "sum", "s.floor_area",
           "Floor area of properties held now (m²).", "成员名下现有房产建筑面积合计（平方米）。",
           "Members own {value:,.0f} m² of property.", "成员名下房产面积{value:,.0f}平方米。",
           "float", active=True),
    _asset("properties_disposed_12m", "real_estate", "count", "1",
           "Properties sold in the last 12 months.", "近12个月出售的房产数量。",
           "Members sold {value:.0f} property(ies) in the last 12 months.",
           "近12个月成员出售房产{value:.0f}处。", on="s.disposed_date", window=12),
    _asset("vehicles_disposed_12m", "vehicles", "count", "1",
           "Vehicles sold or scrapped in the last 12 months.", "近12个月出售或报废的机动车数量。",
           "Members sold or scrapped {value:.0f} vehicle(s) in the last 12 months.",
           "近12个月成员出售或报废机动车{value:.0f}辆。", on="s.deregistered_date", window=12),
    _asset("businesses", "businesses", "count", "1", "Active business registrations.",
           "成员名下存续的工商登记数量。", "Members run {value:.0f} registered business(es).",
           "成员名下有{value:.0f}个存续的经营主体。", active=True),
    _asset("business_capital", "businesses", "sum", "s.registered_capital",
           "Registered capital of active businesses (yuan).", "存续经营主体注册资本合计（元）。",
           "The members' businesses have {value:,.0f} yuan of registered capital.",
           "成员经营主体注册资本合计{value:,.0f}元。", "float", active=True),
    _asset("businesses_closed_12m", "businesses", "count", "1",
           "Businesses deregistered in the last 12 months.", "近12个月注销的经营主体数量。",
           "{value:.0f} business(es) closed in the last 12 months.",
           "近12个月注销经营主体{value:.0f}个。", on="s.deregistered_date", window=12),
    _f("property_area_per_capita", "assets", "Floor area held per member (m²).",
       "人均房产面积（平方米）。", NULL, "Members own {value:,.0f} m² of property per person.",
       "人均房产面积{value:,.0f}平方米。",
       Derived(safe_ratio("property_area", "household_size")), "float"),
]


# --- assistance history -------------------------------------------------------------------
def _on(programme: str, en: str, zh: str) -> Feature:
    return _f(f"on_{programme}", "assistance_history", f"1 if currently receiving {en}.",
              f"当前享受{zh}时为1。", ZERO, f"The household currently receives {en}.",
              f"家庭当前享受{zh}。",
              Agg("assistance", "max", "1", active=True, where=f"s.programme = '{programme}'"),
              "flag")


ASSIST = [
    _on("dibao", "dibao (minimum living allowance)", "最低生活保障"),
    _on("marginal_dibao", "marginal-dibao support", "低保边缘救助"),
    _on("special_hardship", "special-hardship support", "特困人员救助供养"),
    _on("temporary", "temporary assistance", "临时救助"),
    _on("rigid_expenditure", "rigid-expenditure assistance", "刚性支出困难救助"),
    _f("on_any_assistance", "assistance_history", "1 if currently on any programme.",
       "当前享受任一救助时为1。", ZERO, "The household currently receives assistance.",
       "家庭当前正在享受社会救助。", Agg("assistance", "max", "1", active=True), "flag"),
    _f("assistance_amount_monthly", "assistance_history",
       "Monthly assistance currently paid (yuan).", "当前每月救助金额（元）。", ZERO,
       "The household receives {value:,.0f} yuan of assistance a month.",
       "家庭每月领取救助金{value:,.0f}元。",
       Agg("assistance", "sum", "s.monthly_amount", active=True), "float"),
    _f("assistance_spells_past", "assistance_history", "Assistance spells that have ended.",
       "已结束的救助次数。", ZERO, "The household left assistance {value:.0f} time(s) before.",
       "家庭此前有{value:.0f}次救助已结束。",
       Agg("assistance", "count", where=f"s.end_date <= {T}")),
    _f("left_assistance_12m", "assistance_history",
       "Assistance spells that ended in the last 12 months.", "近12个月结束的救助次数。", ZERO,
       "Assistance ended {value:.0f} time(s) in the last 12 months.",
       "近12个月有{value:.0f}项救助结束。",
       Agg("assistance", "count", on="s.end_date", window=12)),
    _f("last_assistance_end_date", "assistance_history", "Date the latest spell ended.",
       "最近一次救助结束日期。", NULL, "Assistance last ended on {value}.",
       "救助最近于{value}结束。",
       Agg("assistance", "max", "s.end_date", where=f"s.end_date <= {T}"), "date", "evidence"),
    _f("months_since_left_assistance", "assistance_history",
       "Calendar months since assistance last ended.", "距最近一次救助结束的月数。",
       Missing("null", reason="never left assistance"),
       "The household left assistance {value:.0f} month(s) ago.",
       "家庭{value:.0f}个月前退出救助。",
       Derived(month_diff("last_assistance_end_date", "as_of_date"))),
    _f("ever_assisted", "assistance_history", "1 if the household ever received assistance.",
       "家庭曾享受过救助时为1。", ZERO, "The household has received assistance before.",
       "家庭曾享受过社会救助。", Agg("assistance", "max", "1"), "flag"),
    _f("temporary_assistance_12m", "assistance_history",
       "Temporary-assistance grants started in the last 12 months.",
       "近12个月获得临时救助的次数。", ZERO,
       "The household received temporary assistance {value:.0f} time(s) in 12 months.",
       "近12个月家庭获得临时救助{value:.0f}次。",
       Agg("assistance", "count", window=12, where="s.programme = 'temporary'")),
]

# --- audit attributes: output for fairness audits, never model inputs ---------------------
AUDIT = [
    _f("head_sex", "age_structure", "Sex of the household head (audit only).",
       "户主性别（仅用于公平性审计）。", NULL, "Head: {value}.", "户主：{value}。",
       Agg("members", "max", "m.sex", where="m.relation_to_head = 'head'"), "str", "audit"),
    _f("head_age_band", "age_structure", "Age band of the household head (audit only).",
       "户主年龄段（仅用于公平性审计）。", Missing("null", reason="'unknown' when no head"),
       "Head aged {value}.", "户主年龄段{value}。",
       Derived("CASE WHEN head_age IS NULL THEN 'unknown' WHEN head_age < 30 THEN '<30' "
               "WHEN head_age < 45 THEN '30-44' WHEN head_age < 60 THEN '45-59' "
               "WHEN head_age < 75 THEN '60-74' ELSE '75+' END"), "str", "audit"),
    _f("has_disabled_member", "disability", "1 if any member holds a certificate (audit).",
       "有持证残疾成员时为1（审计）。", ZERO, "Disabled member: {value}.", "有残疾成员：{value}。",
       Derived("CASE WHEN disabled_members > 0 THEN 1 ELSE 0 END"), "flag", "audit"),
    _f("has_children", "age_structure", "1 if any member is under 18 (audit).",
       "有未成年成员时为1（审计）。", ZERO, "Children: {value}.", "有未成年人：{value}。",
       Derived("CASE WHEN members_age_0_17 > 0 THEN 1 ELSE 0 END"), "flag", "audit"),
]

FEATURES: tuple[Feature, ...] = (*AGE, *ECON, *HEALTH, *DISAB, *EDU, *EMP, *ASSETS, *ASSIST,
                                 *AUDIT)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
KEY_COLUMNS: tuple[str, ...] = ("household_key", "as_of_date", "district")
# Household attributes from the registry, output beside the features for audits.
REGISTRY_AUDIT_COLUMNS: tuple[str, ...] = ("urban_rural",)


def model_feature_names() -> list[str]:
    """Columns a model may use: numeric features, no dates, no audit attributes."""
    return [f.name for f in FEATURES if f.role == "model"]


def evidence_names() -> list[str]:
    """Event dates kept beside the features so indicators can say when they triggered."""
    return [f.name for f in FEATURES if f.role == "evidence"]


def audit_attribute_names() -> list[str]:
    """Group attributes for fairness audits (district first); never model inputs."""
    return ["district", *REGISTRY_AUDIT_COLUMNS, *(f.name for f in FEATURES if f.role == "audit")]


def output_columns() -> list[str]:
    """Column order of a feature build."""
    return [*KEY_COLUMNS, *REGISTRY_AUDIT_COLUMNS,
            *(f.name for f in FEATURES if f.role == "audit"),
            *model_feature_names(), *evidence_names()]


# --- sentences: the one place a feature and a value become a plain-language reason -------
@dataclass(frozen=True)
class FeatureText:
    """Sentences of one feature; `{value}` in a template is replaced by the value (templates
    may carry format specs such as `{value:.0f}`)."""

    name: str
    template_en: str
    template_zh: str
    dimension: str | None = None


MISSING_TEXT = {"en": "{name}: no value recorded.", "zh": "{name}：无记录。"}


def plain_text(name: str) -> FeatureText:
    """The fallback sentence `name = value` for a column without defined templates."""
    return FeatureText(name, f"{name} = {{value:g}}", f"{name} = {{value:g}}")


def feature_texts(names: Sequence[str]) -> dict[str, FeatureText]:
    """Sentence templates for `names` (`plain_text` where no feature is defined)."""
    return {name: FEATURES_BY_NAME[name].text if name in FEATURES_BY_NAME else plain_text(name)
            for name in names}


def format_value(value: float) -> str:
    """A value as shown beside a template that cannot take it: integers plainly, else 2
    decimals, NaN as a dash."""
    if math.isnan(value):
        return "—"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}"


def fill_sentence(text: FeatureText, value: object, lang: str = "en") -> str:
    """The feature's sentence in `lang` ("zh", else English) filled with `value`.

    A missing value (float NaN) gives `MISSING_TEXT`; a template with fields other than
    `value`/`name`, or a spec the value cannot take, is shown plainly with the value after it.
    """
    if isinstance(value, float) and math.isnan(value):
        return MISSING_TEXT["zh" if lang == "zh" else "en"].format(name=text.name)
    template = text.template_zh if lang == "zh" else text.template_en
    try:
        return template.format(value=value, name=text.name)
    except (KeyError, IndexError, ValueError):
        shown = format_value(value) if isinstance(value, int | float) else str(value)
        return f"{template} ({shown})"


def feature(name: str) -> Feature:
    return FEATURES_BY_NAME[name]


def windowed(base: str, months: int) -> str:
    """Name of the `base` feature over `months`, with a clear error when not defined."""
    name = f"{base}_{months}m"
    if name not in FEATURES_BY_NAME:
        have = sorted(n for n in FEATURES_BY_NAME if n.startswith(base + "_"))
        raise ValueError(f"no feature {name!r}: windows defined for {base} are {have}")
    return name
