"""Real model and rows for the serving tests: a tiny LightGBM booster trained on random data,
registered in a real MLflow SQLite registry under the test's SAFETYNET_HOME with the
training contract (native lightgbm flavour, calibrator.json, feature_spec.json, alias).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from safetynet.config import Settings, get_settings

DISTRICTS = ("wuchang", "hongshan")


def model_features() -> list[str]:
    """Real feature names where the feature store defines them (so sentences are real)."""
    try:
        from safetynet.features.definitions import model_feature_names

        names = list(model_feature_names())
    except ImportError:
        names = [f"f{i}" for i in range(20)]
    return names[:40]


def make_data(features: list[str], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.gamma(1.5, 2.0, size=(n, len(features))).round(1)
    X[rng.random(X.shape) < 0.05] = np.nan  # LightGBM handles missing values
    logit = -2.0 + 0.6 * np.nan_to_num(X[:, 0]) - 0.4 * np.nan_to_num(X[:, 1]) \
        + 0.3 * np.nan_to_num(X[:, 2]) + rng.normal(0, 0.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def train_booster(features: list[str], seed: int = 0, rounds: int = 40) -> lgb.Booster:
    X, y = make_data(features, 600, seed)
    params = {"objective": "binary", "num_leaves": 7, "max_depth": 3, "learning_rate": 0.1,
              "min_data_in_leaf": 10, "verbose": -1, "seed": seed, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(X, y, feature_name=features), num_boost_round=rounds)


def register(booster: lgb.Booster, settings: Settings, alias: str = "champion",
             calibrator: dict | None = None) -> str:
    """Log the booster to MLflow with the contract's artifacts; set `alias`; return version."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    name = "serving-test"
    exp = mlflow.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else mlflow.create_experiment(
        name, artifact_location=settings.artifact_root.resolve().as_uri()
    )
    calibrator = calibrator or {"method": "platt", "a": 1.1, "b": -0.2}
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.lightgbm.log_model(booster, name="model",
                                  registered_model_name=settings.model_name)
        mlflow.log_dict(calibrator, "calibrator.json")
        mlflow.log_dict({"features": booster.feature_name()}, "feature_spec.json")
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    version = max(int(v.version) for v in client.search_model_versions(
        f"name='{settings.model_name}'") if v.run_id == run.info.run_id)
    client.set_registered_model_alias(settings.model_name, alias, str(version))
    return str(version)


def household_rows(features: list[str], n: int, seed: int = 1) -> dict[str, dict]:
    """Online-store-shaped rows: feature values plus as_of_date and district."""
    X, _ = make_data(features, n, seed)
    rows = {}
    for i in range(n):
        row = {f: (None if np.isnan(v) else float(v)) for f, v in zip(features, X[i], strict=True)}
        row.update(as_of_date="2026-10-31", district=DISTRICTS[i % 2])
        rows[f"hh{i:05d}"] = row
    return rows


@dataclass
class ServingWorld:
    settings: Settings
    features: list[str]
    booster: lgb.Booster
    version: str
    rows: dict[str, dict]


def build_world(home: Path, n_households: int = 200) -> ServingWorld:
    """Train, register and make rows under `home` (SAFETYNET_HOME must already point there)."""
    get_settings.cache_clear()
    settings = get_settings()
    features = model_features()
    booster = train_booster(features)
    version = register(booster, settings)
    return ServingWorld(settings, features, booster, version,
                        household_rows(features, n_households))


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")
