"""MLflow: where runs go, and what every training run logs.

Backends follow `Settings().tracking_uri`: SQLite under `$SAFETYNET_HOME` by default (artifacts in
`Settings().artifact_root`), PostgreSQL when the URI says `postgresql+psycopg://...`, or a remote
`mlflow server` for `http(s)://...` (that server decides where artifacts go).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from safetynet.config import Settings
from safetynet.model.backend import artifact_root_uri, configure
from safetynet.model.registry import CALIBRATOR_FILE, FEATURE_SPEC_FILE

EXPERIMENT = "safetynet-training"
MODEL_NAME_IN_RUN = "model"
# the evaluated (final fold) model when the registered one is its refit: a later run scores this
# one against its own final test, so the gate compares models with the same data lag
EVALUATED_DIR = "evaluated_model"
EVALUATED_MODEL_FILE = "model.txt"


def ensure_experiment(settings: Settings, name: str = EXPERIMENT) -> str:
    """The experiment id; created with artifacts under `artifact_root` for database backends."""
    from mlflow import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if not settings.tracking_uri.startswith(("http://", "https://")):
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_root_uri(settings)
    return client.create_experiment(name, artifact_location=location)


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    # MLflow stores NaN, but metric comparisons downstream are clearer without them
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def log_training_run(
    result: Any,
    *,
    settings: Settings,
    model_name: str,
    feature_spec: dict[str, Any],
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    extra_metrics: Mapping[str, float],
    artifacts_dir: Path,
    run_name: str | None = None,
) -> tuple[str, str]:
    """Log one run (params, metrics, artifacts, model) and register it; returns (run_id, version).

    `artifacts_dir` holds the plots, model card and tables already written by the caller.
    """
    import mlflow
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    configure(settings)
    exp_id = ensure_experiment(settings)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.set_tags(dict(tags))
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            result.calibrator.to_json(tmp_path / CALIBRATOR_FILE)
            (tmp_path / FEATURE_SPEC_FILE).write_text(json.dumps(feature_spec, indent=2))
            mlflow.log_artifact(str(tmp_path / CALIBRATOR_FILE))
            mlflow.log_artifact(str(tmp_path / FEATURE_SPEC_FILE))
            evaluated = getattr(result, "eval_booster", None)
            if evaluated is not None and evaluated is not result.booster:
                ev = tmp_path / EVALUATED_DIR
                ev.mkdir()
                evaluated.save_model(str(ev / EVALUATED_MODEL_FILE))
                result.eval_calibrator.to_json(ev / CALIBRATOR_FILE)
                mlflow.log_artifacts(str(ev), EVALUATED_DIR)
        mlflow.log_artifacts(str(artifacts_dir))
        example = pd.DataFrame(result.input_example, columns=result.features)
        signature = infer_signature(example, result.booster.predict(example.to_numpy()))
        info = mlflow.lightgbm.log_model(
            result.booster,
            name=MODEL_NAME_IN_RUN,
            signature=signature,
            input_example=example,
            # explicit: inferring them imports the model in a subprocess (~30 s)
            pip_requirements=_requirements(),
        )
        # metrics after the model: MLflow 3 otherwise copies every metric onto the logged
        # model one query at a time (seconds for a few hundred metrics)
        mlflow.log_metrics(_finite({**result.metrics, **extra_metrics}))
        mv = mlflow.register_model(info.model_uri, model_name, tags={"run_id": run.info.run_id})
        return run.info.run_id, str(mv.version)


def _param(value: Any) -> Any:
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)[:6000]
    return value


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("lightgbm", "numpy", "scikit-learn", "mlflow")]
