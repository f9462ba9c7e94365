"""The MLflow registry side of a bundle: artifact names, aliases, loading.

A registered version is a native LightGBM model (`mlflow.lightgbm`) whose run holds
`feature_spec.json` ({"features": [ordered names], ...}) and `calibrator.json`
(`Calibrator.to_dict`). Aliases name roles (`champion`, `challenger`); see docs/training.md.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from safetynet.config import Settings, get_settings
from safetynet.model.backend import configure
from safetynet.model.bundle import Bundle
from safetynet.model.calibration import Calibrator

CHAMPION = "champion"
CALIBRATOR_FILE = "calibrator.json"
FEATURE_SPEC_FILE = "feature_spec.json"


def load_bundle(
    alias: str = CHAMPION,
    settings: Settings | None = None,
    name: str | None = None,
    version: str | None = None,
) -> Bundle:
    """The registered model `name` (default `settings.model_name`) behind `alias`, or the
    explicit `version` (then `Bundle.alias` is None), with its calibrator and feature order.

    Raises LookupError when the alias or version does not exist, ValueError when
    feature_spec.json disagrees with the booster's feature names.
    """
    import mlflow
    import mlflow.lightgbm
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    configure(settings)
    name = name or settings.model_name
    client = MlflowClient()
    try:
        mv = (
            client.get_model_version(name, version)
            if version
            else client.get_model_version_by_alias(name, alias)
        )
    except MlflowException as exc:
        what = f"version {version}" if version else f"alias {alias!r}"
        raise LookupError(f"no model {name!r} with {what} at {settings.tracking_uri}") from exc
    booster = mlflow.lightgbm.load_model(f"models:/{name}/{mv.version}")
    with tempfile.TemporaryDirectory() as tmp:
        cal_path = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=CALIBRATOR_FILE, dst_path=tmp
        )
        spec_path = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=FEATURE_SPEC_FILE, dst_path=tmp
        )
        calibrator = Calibrator.from_json(Path(cal_path))
        spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    features = list(spec["features"])
    if list(booster.feature_name()) != features:
        raise ValueError(f"{FEATURE_SPEC_FILE} of {name} v{mv.version} does not match the "
                         "booster's feature names")
    return Bundle(
        booster=booster,
        features=features,
        calibrator=calibrator,
        name=name,
        version=str(mv.version),
        alias=None if version else alias,
        run_id=mv.run_id,
        feature_spec=spec,
    )


def alias_version(alias: str, settings: Settings) -> str:
    """The version the registry's `alias` points at now (one registry query)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    return str(client.get_model_version_by_alias(settings.model_name, alias).version)
