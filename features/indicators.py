"""The policy's named early-warning indicators: flags raised on their own, beside the model.

Each indicator is a rule over the household's features (offline build or online store), with
its thresholds in `policy.toml` [indicators]. A rule reads float columns (NumPy arrays, NaN
for missing) and returns a boolean array, so the same rule runs on a feature frame
(`compute_indicators`, long format for training, monitoring and the CLI) and on online-store
rows (`indicators_by_row`, for serving: NumPy only, no pandas per request).

`compute_indicators` returns one row per raised flag: household_key, as_of_date, indicator_id,
triggered_on (the underlying event date where the features record one, else the as-of date) and
evidence (JSON of the values that raised it and the threshold applied).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from safetynet.features.definitions import windowed
from safetynet.policy import IndicatorsPolicy


class Columns(Protocol):
    """Float columns by feature name: NaN where a value is missing."""

    def __getitem__(self, name: str) -> np.ndarray: ...


Rule = Callable[[Columns, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class Indicator:
    id: str
    description_en: str
    description_zh: str
    thresholds: tuple[str, ...]           # keys of policy [indicators] it reads
    evidence: Callable[[dict[str, Any]], list[str]]  # feature columns shown as evidence
    rule: Rule
    triggered_on: str | None = None       # feature holding the event date, if any


def _zero_if_missing(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0.0, values)


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "serious_illness", "A member was treated for a serious illness recently.",
        "家庭成员近期因重特大疾病就医。", ("serious_illness_months",),
        lambda p: [windowed("serious_illness_claims", p["serious_illness_months"]),
                   "members_serious_illness_12m", "oop_3m"],
        lambda c, p: c[windowed("serious_illness_claims", p["serious_illness_months"])] > 0,
        "last_serious_claim_date"),
    Indicator(
        "disability_new_or_worse", "A member's disability is new or became more severe.",
        "家庭成员新增残疾或残疾等级加重。", ("disability_new_months",),
        lambda p: [windowed("new_or_worsened_disability", p["disability_new_months"]),
                   "worst_disability_grade", "disabled_members"],
        lambda c, p: c[windowed("new_or_worsened_disability", p["disability_new_months"])] > 0,
        "last_disability_change_date"),
    Indicator(
        "school_absence", "A pupil missed many school days in the last 3 months.",
        "学生近3个月缺课天数较多。", ("school_absence_days_3m",),
        lambda p: ["max_pupil_absence_3m", "absence_days_3m", "absence_rate_3m"],
        lambda c, p: c["max_pupil_absence_3m"] >= p["school_absence_days_3m"]),
    Indicator(
        "school_dropout", "A pupil dropped out of school.", "有学生辍学。",
        ("school_dropout_months",),
        lambda p: [windowed("dropouts", p["school_dropout_months"]), "pupils_enrolled"],
        lambda c, p: c[windowed("dropouts", p["school_dropout_months"])] > 0,
        "last_dropout_date"),
    Indicator(
        "unemployment", "A working-age member is registered unemployed.",
        "有劳动年龄成员登记失业。", ("unemployment_months",),
        lambda p: ["unemployed_working_age", "current_unemployment_months",
                   "unemployment_benefit_3m"],
        lambda c, p: (c["unemployed_working_age"] > 0)
        & (_zero_if_missing(c["current_unemployment_months"]) >= p["unemployment_months"]),
        "current_unemployment_start"),
    Indicator(
        "medical_cost_beyond_income",
        "Out-of-pocket medical spending over 3 months exceeds the monthly income threshold.",
        "近3个月医疗自付费用超过家庭月收入的规定倍数。", ("oop_to_income_ratio",),
        lambda p: ["oop_3m", "income_proxy_monthly", "oop_3m_to_income"],
        lambda c, p: (c["oop_3m_to_income"] > p["oop_to_income_ratio"])
        | (c["oop_with_no_income"] > 0)),
    Indicator(
        "income_drop", "The household's contribution base fell sharply (3 months vs the 3 "
        "before).", "家庭缴费基数（收入）较此前3个月大幅下降。", ("income_drop_ratio",),
        lambda p: ["contribution_base_3m_avg", "contribution_base_prev3m_avg",
                   "contribution_base_trend"],
        lambda c, p: c["contribution_base_trend"] <= -p["income_drop_ratio"]),
    Indicator(
        "elderly_living_alone", "An elderly person lives alone.", "老年人独居。",
        ("elderly_alone_age",),
        lambda p: ["household_size", "oldest_member_age"],
        lambda c, p: (c["household_size"] == 1)
        & (c["oldest_member_age"] >= p["elderly_alone_age"])),
    Indicator(
        "children_without_support",
        "Children live without a working-age adult able to support them (none aged 18-59, "
        "or all severely disabled).", "未成年人家中没有能够抚养的劳动年龄成年人。", (),
        lambda p: ["members_age_0_17", "members_age_18_59", "able_working_age_adults"],
        lambda c, p: (c["members_age_0_17"] > 0) & (c["able_working_age_adults"] <= 0)),
    Indicator(
        "left_assistance_recently", "The household left assistance recently (risk of return).",
        "家庭近期退出救助（存在返贫风险）。", ("left_assistance_months",),
        lambda p: ["months_since_left_assistance", "assistance_spells_past"],
        lambda c, p: (c["months_since_left_assistance"] <= p["left_assistance_months"])
        & (c["on_any_assistance"] == 0),
        "last_assistance_end_date"),
)
INDICATORS_BY_ID = {i.id: i for i in INDICATORS}
OUTPUT_COLUMNS = ["household_key", "as_of_date", "indicator_id", "triggered_on", "evidence"]


def indicator_thresholds(indicators: IndicatorsPolicy) -> dict[str, Any]:
    """The [indicators] section as the key -> threshold mapping the rules read."""
    return indicators.model_dump()


class FrameColumns:
    """A feature frame's columns as float arrays (non-numbers and missing values: NaN)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __getitem__(self, name: str) -> np.ndarray:
        values = pd.to_numeric(self.frame[name], errors="coerce")
        return values.to_numpy(dtype=float, na_value=np.nan)


class RowColumns:
    """Online-store rows (dicts) as float columns, each built once on first use; an absent
    key or None is NaN. Cheap enough for one request: no pandas."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = rows
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        col = self._cache.get(name)
        if col is None:
            values = [r.get(name) for r in self.rows]
            try:
                col = np.array([np.nan if v is None else v for v in values], dtype=float)
            except (TypeError, ValueError):  # a non-number: missing, as in `FrameColumns`
                col = np.array([_number(v) for v in values], dtype=float)
            self._cache[name] = col
        return col


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def raised_masks(columns: Columns, thresholds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Indicator id -> boolean array (one entry per row): where each rule raises its flag.

    `thresholds` is `indicator_thresholds(policy.indicators)`. Missing values never raise a flag."""
    with np.errstate(invalid="ignore"):
        return {ind.id: np.asarray(ind.rule(columns, thresholds), dtype=bool)
                for ind in INDICATORS}


def indicators_by_row(
    rows: Sequence[Mapping[str, Any]], as_of: Sequence[str | None], indicators: IndicatorsPolicy
) -> list[list[dict[str, Any]]]:
    """Raised indicators per row of online-store rows, in `INDICATORS` order:
    [{"indicator_id", "triggered_on": "YYYY-MM-DD" or None, "evidence": {feature: value
    rounded to 6 places or None, ..., "thresholds": {key: value}}}].

    Same rules, thresholds, evidence and trigger dates as `compute_indicators` (a test checks
    they agree). `as_of[i]` is row i's as-of date, the trigger date where the rule records no
    event date. Raises ValueError for rules naming undefined
    windows."""
    p = indicator_thresholds(indicators)
    masks = raised_masks(RowColumns(rows), p)
    out: list[list[dict[str, Any]]] = [[] for _ in rows]
    for ind in INDICATORS:
        hits = np.flatnonzero(masks[ind.id])
        if not len(hits):
            continue
        names = ind.evidence(p)
        thresholds = {k: p[k] for k in ind.thresholds}
        for i in hits.tolist():
            row = rows[i]
            evidence: dict[str, Any] = {}
            for n in names:
                v = row.get(n)
                evidence[n] = None if v is None else round(float(v), 6)
            evidence["thresholds"] = thresholds
            when = (row.get(ind.triggered_on) if ind.triggered_on else None) or as_of[i]
            out[i].append({"indicator_id": ind.id,
                           "triggered_on": None if when is None else str(when)[:10],
                           "evidence": evidence})
    return out


def compute_indicators(features: pd.DataFrame, indicators: IndicatorsPolicy) -> pd.DataFrame:
    """Raised indicators, long format (see module docstring). `policy` is the whole policy
    (or just its [indicators] section). Works on a one-row frame from the online store."""
    p = indicator_thresholds(indicators)
    needed = {"household_key", "as_of_date"}
    for ind in INDICATORS:
        needed |= set(ind.evidence(p))
        needed |= {ind.triggered_on} if ind.triggered_on else set()
    needed |= {"oop_with_no_income", "on_any_assistance"}
    absent = sorted(needed - set(features.columns))
    if absent:
        raise ValueError(f"features lack columns needed by indicators: {', '.join(absent)}")
    as_of = pd.to_datetime(features["as_of_date"])
    masks = raised_masks(FrameColumns(features), p)
    parts = []
    for ind in INDICATORS:
        mask = masks[ind.id]
        if not mask.any():
            continue
        hit = features.loc[mask]
        when = as_of[mask]
        if ind.triggered_on:
            when = pd.to_datetime(hit[ind.triggered_on]).fillna(when)
        thresholds = json.dumps({k: p[k] for k in ind.thresholds})
        cols = ind.evidence(p)
        values = hit[cols].apply(pd.to_numeric, errors="coerce")
        lines = pd.Series(values.to_json(orient="records", lines=True,
                                         double_precision=6).splitlines())
        evidence = (lines.str[:-1] + ',"thresholds":' + thresholds + "}").to_numpy()
        parts.append(pd.DataFrame({
            "household_key": hit["household_key"].to_numpy(), "as_of_date": as_of[mask].to_numpy(),
            "indicator_id": ind.id, "triggered_on": when.to_numpy(), "evidence": evidence}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("as_of_date",
                             "triggered_on") else "object") for c in OUTPUT_COLUMNS})
    return pd.concat(parts, ignore_index=True)[OUTPUT_COLUMNS]


def summarize(indicators: pd.DataFrame) -> pd.DataFrame:
    """Households flagged per indicator and as-of date (every indicator listed, zero too)."""
    counts = indicators.groupby(["as_of_date", "indicator_id"]).size().rename("households")
    dates = sorted(indicators["as_of_date"].unique()) or [pd.NaT]
    idx = pd.MultiIndex.from_product([dates, [i.id for i in INDICATORS]],
                                     names=["as_of_date", "indicator_id"])
    return counts.reindex(idx, fill_value=0).reset_index()


def catalogue() -> list[dict[str, Any]]:
    """Indicator id, descriptions and the policy keys they read (for docs and the CLI)."""
    return [{"id": i.id, "description_en": i.description_en, "description_zh": i.description_zh,
             "thresholds": list(i.thresholds), "triggered_on": i.triggered_on or "as_of_date"}
            for i in INDICATORS]


__all__ = ["INDICATORS", "INDICATORS_BY_ID", "Columns", "FrameColumns", "Indicator",
           "RowColumns", "catalogue", "compute_indicators", "indicator_thresholds",
           "indicators_by_row", "raised_masks", "summarize"]
