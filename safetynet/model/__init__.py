"""The model ground floor: the bundle and its one prediction path, calibration, tiers and
reason ranking, used alike by training's evaluation, monitoring and serving."""

from safetynet.model.backend import configure
from safetynet.model.bundle import Bundle
from safetynet.model.calibration import Calibrator
from safetynet.model.reasons import top_contributions
from safetynet.model.registry import (
    CALIBRATOR_FILE,
    CHAMPION,
    FEATURE_SPEC_FILE,
    alias_version,
    load_bundle,
)
from safetynet.model.tiers import TIER_ORDER, TIERS, tier_rank, tiers_of

__all__ = [
    "CALIBRATOR_FILE",
    "CHAMPION",
    "FEATURE_SPEC_FILE",
    "TIERS",
    "TIER_ORDER",
    "Bundle",
    "Calibrator",
    "alias_version",
    "configure",
    "load_bundle",
    "tier_rank",
    "tiers_of",
    "top_contributions",
]
