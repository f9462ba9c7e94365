"""The typed policy: `policy.toml` validated once into frozen pydantic models.

Every value lives in the file (`safetynet/policy.toml`, or the copy `SAFETYNET_POLICY_FILE`
names); the models only say what a value may be. Unknown keys are refused. A bad file raises
`PolicyError` with one line naming the file, section and key, e.g.
`policy.toml [tiers] red: input should be a number`. Why the policy is typed: docs/configuration.md.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

AUDIT_METRICS = ("recall", "fpr", "precision", "share_flagged")
CONDITION_OPS = ("<", "<=", ">", ">=", "==", "!=")

Fraction = Annotated[float, Field(gt=0, le=1)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Names = Annotated[tuple[str, ...], Strict(False)]  # TOML arrays arrive as lists


class PolicyError(ValueError):
    """A policy file that cannot be read or does not validate; the message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LabelPolicy(_Section):
    """[label]: onset label and cohort (training/labels.py)."""

    horizon_months: PositiveInt
    onset_programmes: Annotated[Names, Field(min_length=1)]
    long_term_programmes: Names


class TrainingPolicy(_Section):
    """[training]: temporal folds, search budget, explanation budget, baselines."""

    n_folds: PositiveInt
    test_periods: PositiveInt
    valid_periods: PositiveInt
    fractions: Annotated[tuple[Fraction, ...], Strict(False), Field(min_length=1)]
    k_per_group: PositiveInt
    calibration: Literal["auto", "isotonic", "platt"]
    n_trials: PositiveInt
    seed: int
    max_rounds: PositiveInt
    early_stopping_rounds: PositiveInt
    num_threads: PositiveInt
    search_max_rows: NonNegativeInt  # 0: trials fit on all rows
    min_learning_rate: Annotated[float, Field(gt=0)]
    prune: bool
    explain_budget_ms: Annotated[float, Field(gt=0)]
    ns_per_leaf: Annotated[float, Field(gt=0)]
    compare_unconstrained: bool
    refit: bool
    pmt_features: Names
    not_allowed_features: Names


class PromotionPolicy(_Section):
    """[promotion]: the registry gate (training/promote.py)."""

    metric: str
    margin: float
    fairness: Literal["absolute", "no_worse"]


class FairnessPolicy(_Section):
    """[fairness]: bias audit at the outreach threshold (training/fairness.py)."""

    disparity_low: Annotated[float, Field(gt=0, le=1)]
    disparity_high: Annotated[float, Field(ge=1)]
    gate_metrics: Annotated[tuple[Literal[AUDIT_METRICS], ...], Strict(False)]  # type: ignore[valid-type]
    min_group_positives: NonNegativeInt
    # attribute -> reference group; absent: the largest group of each attribute
    reference_groups: dict[str, str] | None = None
    # need recall by group (simulated data, `train --truth`): training/need.py
    need_audit_attributes: Annotated[Names, Field(min_length=1)]

    @model_validator(mode="after")
    def _bounds_ordered(self) -> FairnessPolicy:
        if not self.disparity_low < self.disparity_high:
            raise ValueError(
                f"disparity_low: must be below disparity_high "
                f"({self.disparity_low:g} >= {self.disparity_high:g})"
            )
        return self


class IndicatorsPolicy(_Section):
    """[indicators]: thresholds of the named early-warning indicators (features/indicators.py)."""

    serious_illness_months: PositiveInt
    oop_to_income_ratio: Annotated[float, Field(gt=0)]
    disability_new_months: PositiveInt
    school_absence_days_3m: Annotated[float, Field(ge=0)]
    school_dropout_months: PositiveInt
    unemployment_months: NonNegativeInt
    income_drop_ratio: Fraction
    elderly_alone_age: PositiveInt
    left_assistance_months: PositiveInt


class TiersPolicy(_Section):
    """[tiers]: calibrated probability thresholds, checked from the top."""

    red: Fraction
    orange: Fraction
    yellow: Fraction

    @model_validator(mode="after")
    def _descending(self) -> TiersPolicy:
        for lower, lo, upper, hi in (
            ("orange", self.orange, "red", self.red),
            ("yellow", self.yellow, "orange", self.orange),
        ):
            if not lo < hi:
                raise ValueError(f"{lower}: must be below {upper} ({lo:g} >= {hi:g})")
        return self

    def thresholds(self) -> dict[str, float]:
        """Tier name -> lowest probability of the tier, from the top (red first)."""
        return {"red": self.red, "orange": self.orange, "yellow": self.yellow}


class OutreachPolicy(_Section):
    """[outreach]: visit capacity, audit slice, cooldown, alert thresholds, and when a need
    estimate is shown (monitoring/worklists.py, monitoring/report.py)."""

    capacity_fraction: Fraction
    visits_per_caseworker_month: PositiveInt
    caseworkers_per_district: PositiveInt
    # random audit visits per district and month, paid from the district's capacity; 0: none
    audit_visits_per_district: NonNegativeInt
    cooldown_months: NonNegativeInt
    score_rise_alert: Fraction
    # a need estimate needs this many reached visits (audit visits for the unlisted and
    # recall, listed visits for precision), months pooled; fewer: "not enough audit visits"
    min_estimate_visits: PositiveInt
    max_interval_width: Fraction  # a wider 95% interval is shown as the status, not a value

    @model_validator(mode="after")
    def _audit_within_capacity(self) -> OutreachPolicy:
        capacity = self.visits_per_caseworker_month * self.caseworkers_per_district
        if self.audit_visits_per_district > capacity:
            raise ValueError(
                f"audit_visits_per_district: must not exceed the district's capacity "
                f"visits_per_caseworker_month x caseworkers_per_district "
                f"({self.audit_visits_per_district} > {capacity})"
            )
        return self


class DriftPolicy(_Section):
    """[drift]: PSI lines and the precision drop that recommend retraining."""

    psi_warn: Annotated[float, Field(gt=0)]
    psi_retrain: Annotated[float, Field(gt=0)]
    precision_drop_retrain: Fraction

    @model_validator(mode="after")
    def _warn_below_retrain(self) -> DriftPolicy:
        if not self.psi_warn < self.psi_retrain:
            raise ValueError(
                f"psi_warn: must be below psi_retrain ({self.psi_warn:g} >= {self.psi_retrain:g})"
            )
        return self


Condition = Annotated[tuple[str, Literal[CONDITION_OPS], float], Strict(False)]  # type: ignore[valid-type]


class ProgrammePolicy(_Section):
    """[programmes.<id>]: a matching rule; every `all` condition and one `any` must hold."""

    name_en: str
    name_zh: str
    # absent: no condition of that kind (a rule needs at least one of the two)
    all: Annotated[tuple[Condition, ...], Strict(False)] = ()
    any: Annotated[tuple[Condition, ...], Strict(False)] = ()

    @field_validator("all", "any", mode="before")
    @classmethod
    def _condition_shape(cls, value: Any) -> Any:
        for item in value if isinstance(value, list | tuple) else [value]:
            ok = (
                isinstance(item, list | tuple)
                and len(item) == 3
                and isinstance(item[0], str)
                and item[1] in CONDITION_OPS
                and isinstance(item[2], int | float)
                and not isinstance(item[2], bool)
            )
            if not ok:
                raise ValueError(
                    f"a condition is [feature, op, number] with op one of "
                    f"{' '.join(CONDITION_OPS)}, got {_short(item)}"
                )
        return value

    @model_validator(mode="after")
    def _has_conditions(self) -> ProgrammePolicy:
        if not self.all and not self.any:
            raise ValueError("all: the rule has no conditions (give `all` and/or `any`)")
        return self


class Policy(_Section):
    """The whole policy file, one attribute per section."""

    label: LabelPolicy
    training: TrainingPolicy
    promotion: PromotionPolicy
    fairness: FairnessPolicy
    indicators: IndicatorsPolicy
    tiers: TiersPolicy
    outreach: OutreachPolicy
    drift: DriftPolicy
    programmes: dict[str, ProgrammePolicy]

    def replace(self, **sections: Mapping[str, Any]) -> Policy:
        """A validated copy with some keys replaced, e.g. `replace(tiers={"red": 0.4})`: a
        section's keys are merged, `programmes` is replaced whole. Raises `PolicyError`."""
        data = self.model_dump()
        for name, values in sections.items():
            merge = isinstance(getattr(self, name, None), BaseModel)
            data[name] = {**data[name], **values} if merge else values
        return parse_policy(data, "policy (replaced)")


def parse_policy(data: Mapping[str, Any], source: str = "policy.toml") -> Policy:
    """Validate a parsed policy document; raises `PolicyError` naming `source`, section, key."""
    try:
        return Policy.model_validate(dict(data))
    except ValidationError as exc:
        raise PolicyError(_one_line(exc, source)) from None


def read_policy(path: Path) -> Policy:
    """Read and validate one policy file (uncached); raises `PolicyError`."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    return parse_policy(data, str(path))


def cached_policy(path: Path) -> Policy:
    """`read_policy`, once per file version (path, modification time and size)."""
    path = Path(path).resolve()
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, 0)  # read_policy reports the missing file
    return _cached(path, stamp)


@lru_cache(maxsize=16)
def _cached(path: Path, stamp: tuple[int, int]) -> Policy:
    return read_policy(path)


# --- one-line messages from pydantic's errors ------------------------------------------------
_SHORT = {
    "float_type": "input should be a number",
    "float_parsing": "input should be a number",
    "int_type": "input should be a whole number",
    "int_parsing": "input should be a whole number",
    "int_from_float": "input should be a whole number",
    "bool_type": "input should be true or false",
    "string_type": "input should be a string",
    "tuple_type": "input should be a list",
    "dict_type": "input should be a table",
    "model_type": "input should be a table",
    "missing": "missing (required)",
}


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _where(loc: tuple[Any, ...]) -> tuple[str, str]:
    """('programmes', 'dibao', 'all', 0) -> ('[programmes.dibao]', 'all[0]')."""
    parts = list(loc)
    if not parts:
        return "", ""
    section = str(parts.pop(0))
    if section == "programmes" and parts:
        section += f".{parts.pop(0)}"
    key = ""
    for p in parts:
        key += f"[{p}]" if isinstance(p, int) else (f".{p}" if key else str(p))
    return f"[{section}]", key


def _message(err: Mapping[str, Any]) -> str:
    kind, loc = err["type"], tuple(err["loc"])
    if kind == "extra_forbidden":
        return "unknown section" if len(loc) == 1 else "unknown key"
    if kind == "missing" and len(loc) == 1:
        return "section missing"
    if kind == "value_error":  # our validators: "key: text" or plain text
        return str(err["ctx"]["error"]) if "ctx" in err else str(err["msg"])
    text = _SHORT.get(kind) or str(err["msg"])
    text = text[:1].lower() + text[1:]
    return text if kind == "missing" else f"{text}, got {_short(err.get('input'))}"


def _did_you_mean(err: Mapping[str, Any], errors: list[Any]) -> str:
    """For an unknown key: the closest missing key of the same section, if one is close."""
    if err["type"] != "extra_forbidden":
        return ""
    loc = tuple(err["loc"])
    missing = [
        str(e["loc"][-1])
        for e in errors
        if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]
    ]
    close = difflib.get_close_matches(str(loc[-1]), missing, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _one_line(exc: ValidationError, source: str) -> str:
    # an unknown key first: a typo also makes the intended key "missing"
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    section, key = _where(tuple(first["loc"]))
    message = _message(first) + _did_you_mean(first, errors)
    if first["type"] == "value_error" and not key:  # a cross-field check: "key: text"
        line = f"{source} {section} {message}"
    else:
        line = f"{source} {section}{' ' + key if key else ''}: {message}"
    more = len(errors) - 1
    return line + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
