"""Where a monitoring run's inputs come from: the feature store, the assistance rolls, the
champion, and the drift reference. Thin seams over the other areas' public functions."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from safetynet.config import Settings
from safetynet.model import CHAMPION, Bundle, load_bundle
from safetynet.monitoring.drift import DriftReference, reference_path


def load_features(settings: Settings, as_of: date, path: Path | None = None) -> pd.DataFrame:
    """One row per household at `as_of`: a given Parquet file (rows of that date) or a build."""
    if path is not None:
        df = pd.read_parquet(path)
        if "as_of_date" in df:
            df = df[pd.to_datetime(df["as_of_date"]).dt.date == as_of]
        if df.empty:
            raise ValueError(f"{path.name} has no rows for as-of date {as_of}")
        return df.reset_index(drop=True)
    from safetynet.features.build import build_features

    return build_features([as_of], settings.store_dir)


def load_assistance(settings: Settings) -> pd.DataFrame | None:
    """The assistance rolls of the offline store (None when nothing was ingested yet)."""
    from safetynet.training.household import read_assistance

    try:
        return read_assistance(settings)
    except Exception:  # an empty store has no assistance view: nobody is on assistance
        return None


def load_indicators(features: pd.DataFrame, policy: dict[str, Any]) -> pd.DataFrame | None:
    """Early-warning indicators of the feature rows (None if the table lacks their evidence)."""
    from safetynet.features.indicators import compute_indicators

    try:
        return compute_indicators(features, policy)
    except ValueError:
        return None


def load_champion(settings: Settings, alias: str = CHAMPION) -> Bundle:
    """The registered model behind `alias`, loaded natively (booster + calibrator)."""
    return load_bundle(alias=alias, settings=settings)


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
    from safetynet.features.build import build_features

    frame = build_features(training_as_of, settings.store_dir)
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
