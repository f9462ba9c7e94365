"""Real model and rows for the serving tests: a tiny LightGBM booster trained on random data,
registered in a real MLflow SQLite registry under the test's SAFETYNET_HOME with the
training contract (native lightgbm flavour, calibrator.json, feature_spec.json, alias).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import lightgbm as lgb
import numpy as np
import pytest

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

    # both globals: training.tracking.configure sets the registry URI too, and a registry
    # URI left over from an earlier test would send this model to another test's registry
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    name = "serving-test"
    exp = mlflow.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else mlflow.create_experiment(
        name, artifact_location=settings.artifact_root.resolve().as_uri()
    )
    calibrator = calibrator or {"method": "platt", "a": 1.1, "b": -0.2}
    with mlflow.start_run(experiment_id=exp_id) as run:
        # explicit requirements: inferring them imports and inspects the environment (slow)
        mlflow.lightgbm.log_model(booster, name="model", pip_requirements=["lightgbm"],
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
    home: Path
    settings: Settings
    features: list[str]
    booster: lgb.Booster
    version: str
    rows: dict[str, dict]


def write_online_store(settings: Settings, rows: dict[str, dict]) -> None:
    """Materialize the rows into the real online store (SQLite or Redis per settings)."""
    import pandas as pd

    from safetynet.features.online import open_online_store

    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis("household_key")
    frame = frame.reset_index()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    store = open_online_store(settings)
    store.write(frame)
    store.close()


_EMPTY_MLFLOW_DB: list[Path] = []  # created once per test session, copied into each world


def _seed_mlflow_db(settings: Settings) -> None:
    """Creating MLflow's SQLite schema runs its whole migration history (tens of seconds on a
    busy machine): do it once per session and copy the empty database into each home."""
    import shutil
    import tempfile

    import mlflow

    if not _EMPTY_MLFLOW_DB:
        path = Path(tempfile.mkdtemp(prefix="mlflow-template-")) / "mlflow.db"
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
        _EMPTY_MLFLOW_DB.append(path)
    target = settings.home / "mlflow.db"
    if settings.mlflow_tracking_uri is None and not target.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(_EMPTY_MLFLOW_DB[0], target)


def build_world(home: Path, n_households: int = 200) -> ServingWorld:
    """Train, register, write the online store and the service database under `home`.
    SAFETYNET_HOME must already point at `home`."""
    get_settings.cache_clear()
    settings = get_settings()
    _seed_mlflow_db(settings)
    features = model_features()
    booster = train_booster(features)
    version = register(booster, settings)
    rows = household_rows(features, n_households)
    write_online_store(settings, rows)
    from safetynet.db.migrate import migrate

    migrate(settings)
    return ServingWorld(home, settings, features, booster, version, rows)


@pytest.fixture(scope="module")
def serving_world(tmp_path_factory) -> Iterator[ServingWorld]:
    """A home with a registered champion, an online store and a migrated database."""
    home = tmp_path_factory.mktemp("serving_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETYNET_HOME", str(home))
        mp.setenv("SAFETYNET_SERVE_MODEL_POLL_SECONDS", "0")
        world = build_world(home)
    get_settings.cache_clear()
    yield world
    get_settings.cache_clear()


@pytest.fixture()
def in_world(serving_world, monkeypatch) -> ServingWorld:
    """Point this test's settings at the serving world."""
    monkeypatch.setenv("SAFETYNET_HOME", str(serving_world.home))
    monkeypatch.setenv("SAFETYNET_SERVE_MODEL_POLL_SECONDS", "0")
    get_settings.cache_clear()
    return serving_world


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(home: Path, workdir: Path) -> Iterator[tuple[str, str, Path]]:
    """`safetynet serve` on a free loopback port for the home at `home`, with a platform key:
    yields (base URL, token, server log); stops the server on exit."""
    from safetynet.db.engine import get_engine
    from safetynet.serving.keys import create_key

    port = free_port()
    env = {**os.environ, "SAFETYNET_HOME": str(home), "SAFETYNET_SERVE_MODEL_POLL_SECONDS": "0",
           "BENTOML_HOME": str(workdir / "bentoml")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETYNET_HOME", str(home))
        get_settings.cache_clear()
        _, token = create_key(get_engine(), "platform")
    get_settings.cache_clear()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "server.log"
    exe = Path(sys.executable).with_name("safetynet")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready in time: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
