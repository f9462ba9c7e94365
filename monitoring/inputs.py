"""Where a monitoring run's inputs come from: the feature store, the assistance rolls, the
champion, and the drift reference. Thin seams over the other areas' public functions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from safetynet.config import Settings
from safetynet.features.feature_store import FeatureStore
from safetynet.features.indicators import compute_indicators
from safetynet.model import Bundle, load_bundle
from safetynet.monitoring.drift import DriftReference, reference_path
from safetynet.policy import IndicatorsPolicy


def load_features(settings: Settings, as_of: date, path: Path | None = None) -> pd.DataFrame:
    """One row per household at `as_of`: a given Parquet file (rows of that date) or a build."""
    return FeatureStore(settings).historical([as_of], source=path)


def load_assistance(settings: Settings) -> pd.DataFrame | None:
    """The assistance rolls of the offline store (None when nothing was ingested yet)."""
    try:
        return FeatureStore(settings).assistance()
    except Exception:  # an empty store has no assistance view: nobody is on assistance
        return None


def load_indicators(features: pd.DataFrame, indicators: IndicatorsPolicy) -> pd.DataFrame | None:
    """Early-warning indicators of the feature rows (None if the table lacks their evidence)."""
    try:
        return compute_indicators(features, indicators)
    except ValueError:
        return None


def load_champion(settings: Settings, alias: str | None = None) -> Bundle:
    """The registered model behind `alias` (default: the `model_alias` setting, the model in
    use, as `serve` serves it), loaded natively (booster + calibrator)."""
    return load_bundle(alias=alias or settings.model_alias, settings=settings)


def resolve_reference(
    settings: Settings,
    bundle: Bundle,
    training_as_of: list[date] | None = None,
    max_rows: int = 500_000,
) -> DriftReference | None:
    """The drift reference of this model version.

    Kept under reports/monitoring/reference/. When missing and `training_as_of` is given, it is
    computed from the feature table at those dates (the champion's training dates) scored by
    the champion; otherwise None, and the run's own data becomes the reference (first run).
    """
    path = reference_path(settings.reports_dir, bundle.name, str(bundle.version))
    if path.exists():
        return DriftReference.load(path)
    if not training_as_of:
        return None

    frame = FeatureStore(settings).historical(training_as_of)
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=0)
    X = frame[list(bundle.features)].to_numpy(dtype=np.float64, na_value=np.nan)
    ref = DriftReference.fit(
        X,
        list(bundle.features),
        bundle.predict_proba(X),
        bundle.name,
        str(bundle.version),
        source="training as-of dates " + ",".join(d.isoformat() for d in training_as_of),
    )
    ref.save(path)
    return ref
