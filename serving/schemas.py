"""Request and response models of the scoring API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# JSON cannot carry NaN or infinity in standard form; pydantic's parser accepts the
# `NaN`/`Infinity` literals, so they are rejected explicitly. `null` means "missing".
FeatureValue = Annotated[float | None, Field(allow_inf_nan=False)]
HouseholdId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(_Strict):
    """Either `household_ids` (features from the online store) or `records` (features given)."""

    household_ids: list[HouseholdId] | None = Field(
        default=None, min_length=1,
        description="Household pseudonyms (household_key) to score from the online store.",
    )
    records: list[dict[str, FeatureValue]] | None = Field(
        default=None, min_length=1,
        description="Feature rows given by the caller: every model feature, no others; "
        "null marks a missing value. Results carry household_id `record:<index>`.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ScoreRequest:
        if (self.household_ids is None) == (self.records is None):
            raise ValueError("give exactly one of `household_ids` or `records`")
        return self


class ExplainRequest(_Strict):
    """One household by pseudonym, or one record of feature values."""

    household_id: HouseholdId | None = None
    record: dict[str, FeatureValue] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ExplainRequest:
        if (self.household_id is None) == (self.record is None):
            raise ValueError("give exactly one of `household_id` or `record`")
        return self


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str


class Reason(BaseModel):
    feature: str
    value: float | None = Field(description="The feature's value for this household.")
    contribution: float = Field(description="TreeSHAP contribution in log-odds (raw model scale).")
    direction: Literal["raises", "lowers"]
    text: str = Field(description="Plain-language sentence in the requested language.")


class Indicator(BaseModel):
    indicator_id: str
    triggered_on: str | None = None
    evidence: dict[str, Any] | None = Field(
        default=None, description="The values that raised the indicator and the thresholds."
    )


class Fact(BaseModel):
    feature: str
    op: str
    threshold: float
    value: float | None


class Programme(BaseModel):
    programme_id: str
    name: str
    rule: str = Field(description="The configured rule, readable.")
    facts: list[Fact] = Field(description="The conditions that held for this household.")


class ScoreResult(BaseModel):
    household_id: str
    risk_score: float = Field(description="Calibrated probability of hardship onset.")
    risk_tier: Literal["red", "orange", "yellow", "green"]
    model: ModelInfo
    features_as_of: str | None
    reasons: list[Reason]
    indicators: list[Indicator]
    programs: list[Programme]


class ScoreResponse(BaseModel):
    results: list[ScoreResult]


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float


class ExplainResponse(BaseModel):
    household_id: str
    model: ModelInfo
    features_as_of: str | None
    risk_score: float = Field(description="Calibrated probability (reported separately).")
    raw_score: float = Field(description="Log-odds output = base_value + sum(contributions).")
    base_value: float = Field(description="Expected model output in log-odds (SHAP base value).")
    contributions: list[Contribution] = Field(
        description="Every feature's TreeSHAP contribution in log-odds, largest |value| first."
    )


class ReloadResponse(BaseModel):
    old_version: str
    new_version: str
    changed: bool


class ErrorResponse(BaseModel):
    error: str
