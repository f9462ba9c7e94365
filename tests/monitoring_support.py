"""Test helpers for the monitoring tests: small generated cohorts and a real LightGBM bundle.

The bundle is `safetynet.model.Bundle` (the project's own wrapper of a native booster and its
calibrator) around a real booster trained here in a second; nothing of ours is stubbed.
`FailingBundle` is a real bundle whose SHAP call raises, to inject a failure midway.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from safetynet.config import DEFAULT_POLICY_FILE, load_policy
from safetynet.model import Bundle, Calibrator

FEATURES = ["income_drop", "oop_ratio", "members_65plus", "unemployed", "absence_days"]
DISTRICTS = ["east", "west", "north"]


def make_features(n: int = 600, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """A cohort at one as-of date: keys, district, street, model features (shift moves them)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "household_key": [f"hh{i:05d}" for i in range(n)],
            "district": rng.choice(DISTRICTS, n),
            "street": rng.choice(["s1", "s2"], n),
            "income_drop": rng.normal(shift, 1, n),
            "oop_ratio": rng.gamma(2, 0.3, n) + shift,
            "members_65plus": rng.integers(0, 3, n).astype(float),
            "unemployed": (rng.random(n) < 0.2).astype(float),
            "absence_days": np.where(rng.random(n) < 0.1, np.nan, rng.poisson(2, n)).astype(float),
        }
    )
    return df


def train_bundle(seed: int = 0, version: str = "1"):
    """A real LightGBM booster (7 leaves, depth 3) with identity calibration."""
    import lightgbm as lgb

    df = make_features(3000, seed=seed + 100)
    X = df[FEATURES].to_numpy(float)
    logit = -2.5 + 1.2 * X[:, 0] + 1.0 * X[:, 1] + 0.8 * X[:, 3]
    y = (np.random.default_rng(seed).random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 7,
            "max_depth": 3,
            "learning_rate": 0.1,
            "verbose": -1,
            "seed": seed,
            "num_threads": 1,
        },
        lgb.Dataset(X, y, feature_name=FEATURES),
        num_boost_round=40,
    )
    return Bundle(
        booster=booster,
        features=list(FEATURES),
        calibrator=Calibrator("identity"),
        name="test-model",
        version=version,
        alias="champion",
    )


class FailingBundle(Bundle):
    """A real bundle whose SHAP path raises (failure injected after scoring, before writing)."""

    def __init__(self, inner: Bundle) -> None:
        super().__init__(**vars(inner))

    def predict(self, X: np.ndarray):  # type: ignore[no-untyped-def]
        raise RuntimeError("injected failure in predict")


POLICY = load_policy(DEFAULT_POLICY_FILE).replace(
    tiers={"red": 0.30, "orange": 0.15, "yellow": 0.07},
    outreach={
        "capacity_fraction": 0.05,
        "visits_per_caseworker_month": 5,
        "caseworkers_per_district": 2,
        "audit_visits_per_district": 3,
        "cooldown_months": 3,
        "score_rise_alert": 0.10,
        "min_estimate_visits": 30,
        "max_interval_width": 0.5,
    },
    drift={"psi_warn": 0.1, "psi_retrain": 0.25, "precision_drop_retrain": 0.2},
)


def register_champion(booster, settings, alias: str = "champion") -> str:  # type: ignore[no-untyped-def]
    """Log a booster to the MLflow registry under `settings` with the bundle contract's
    artifacts (calibrator.json, feature_spec.json) and point `alias` at it; returns version."""
    import mlflow
    from mlflow import MlflowClient

    # both globals: training.tracking.configure sets the registry URI too, and a registry
    # URI left over from an earlier test would send this model to another test's registry
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    known = mlflow.get_experiment_by_name("monitoring-test")  # a second model: same experiment
    exp_id = known.experiment_id if known else mlflow.create_experiment(
        "monitoring-test", artifact_location=settings.artifact_root.resolve().as_uri()
    )
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.lightgbm.log_model(booster, name="model", registered_model_name=settings.model_name)
        mlflow.log_dict({"method": "identity"}, "calibrator.json")
        mlflow.log_dict({"features": booster.feature_name()}, "feature_spec.json")
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    version = max(
        int(v.version)
        for v in client.search_model_versions(f"name='{settings.model_name}'")
        if v.run_id == run.info.run_id
    )
    client.set_registered_model_alias(settings.model_name, alias, str(version))
    return str(version)


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        print(f"PostgreSQL unreachable at 127.0.0.1:5432: {exc}")
        pytest.skip(f"PostgreSQL unreachable at 127.0.0.1:5432: {type(exc).__name__}")
    name = f"sn_monitoring_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_engine(kind: str, tmp_path, request):  # type: ignore[no-untyped-def]
    """A migrated SQLite (in tmp_path) or PostgreSQL (session database) engine, tables emptied."""
    from safetynet.db.engine import make_engine
    from safetynet.db.migrate import migrate_engine
    from safetynet.db.tables import MONITORING_TABLES

    if kind == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'sn.db'}")
    else:
        eng = sa.create_engine(request.getfixturevalue("pg_url"))
    migrate_engine(eng)
    with eng.begin() as conn:  # the PostgreSQL database is shared by the session's tests
        for t in MONITORING_TABLES:
            conn.execute(sa.text(f"DELETE FROM {t}"))
    return eng
