"""What serving and monitoring load: the native LightGBM booster plus its calibrator and
feature order, for a registry alias. No pandas and no pyfunc on the hot path."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safetynet.config import Settings, get_settings
from safetynet.training.calibration import Calibrator
from safetynet.training.tracking import CALIBRATOR_FILE, FEATURE_SPEC_FILE, configure


@dataclass
class ModelBundle:
    booster: Any  # lightgbm.Booster
    features: list[str]
    calibrator: Calibrator
    name: str
    version: str
    alias: str | None
    run_id: str
    feature_spec: dict[str, Any] = field(default_factory=dict)

    def calibrate(self, raw_prob: np.ndarray) -> np.ndarray:
        return self.calibrator.transform(raw_prob)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated probability [n], log-odds contributions [n, n_features + 1]).

        Columns of X follow `self.features`; the last contribution column is the base value.
        NaN is a valid missing value.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} feature columns, got {X.shape[1]}")
        contrib = self.booster.predict(X, pred_contrib=True)
        # the contributions sum to the raw log-odds: no second pass through the trees needed
        raw = 1.0 / (1.0 + np.exp(-contrib.sum(axis=1)))
        return self.calibrate(raw), contrib


def load_bundle(
    alias: str = "champion",
    settings: Settings | None = None,
    name: str | None = None,
    version: str | None = None,
) -> ModelBundle:
    """Load a registered model by alias (or explicit version) with its calibrator and features."""
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
    return ModelBundle(
        booster=booster,
        features=list(spec["features"]),
        calibrator=calibrator,
        name=name,
        version=str(mv.version),
        alias=None if version else alias,
        run_id=mv.run_id,
        feature_spec=spec,
    )
