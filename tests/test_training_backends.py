"""The same training run against PostgreSQL and against a remote `mlflow server`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from safetynet.config import Settings
from safetynet.model import load_bundle
from safetynet.training.train import train_and_log
from tests.training_support import POLICY, config, spec, xor_table

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _train_and_load(settings: Settings) -> None:
    table = xor_table(n_entities=200, n_periods=12)
    out = train_and_log(table, spec(), config(), settings=settings, promotion=POLICY.promotion,
                        model_name="backend-test", promote_after=True)
    assert out.decision.promoted, out.decision.summary()
    bundle = load_bundle("champion", settings, name="backend-test")
    assert bundle.version == out.version and bundle.run_id == out.run_id
    prob, contrib = bundle.predict(table[bundle.features].to_numpy()[:5])
    assert prob.shape == (5,) and contrib.shape == (5, len(bundle.features) + 1)


@pytest.mark.postgres
def test_postgresql_backend(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres",
                                autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}")
    db = f"sn_mlflow_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{db}"')
    try:
        settings = Settings(home=tmp_path, mlflow_tracking_uri=f"{PG}/{db}")
        _train_and_load(settings)
        # artifacts went under the home's artifact root, metadata into PostgreSQL
        assert any(settings.artifact_root.rglob("calibrator.json"))
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}") as con:
            n = con.execute("SELECT count(*) FROM registered_models").fetchone()[0]
        assert n == 1
    finally:
        _dispose_mlflow_engines()
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def _dispose_mlflow_engines() -> None:
    """MLflow caches SQLAlchemy engines per URI; close them so the database can be dropped."""
    import gc

    import sqlalchemy

    for obj in gc.get_objects():
        if isinstance(obj, sqlalchemy.engine.Engine):
            obj.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_remote_mlflow_server(tmp_path):
    import urllib.request

    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log_file = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    try:
        deadline = time.time() + 300  # a busy 2-core machine imports slowly
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log = (tmp_path / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"mlflow server did not come up: {log}")
            time.sleep(0.5)
        home = tmp_path / "client-home"
        settings = Settings(home=home, mlflow_tracking_uri=f"http://127.0.0.1:{port}")
        _train_and_load(settings)
        # the server, not the client, stored the artifacts
        assert any((tmp_path / "server-artifacts").rglob("calibrator.json"))
        assert not settings.artifact_root.exists()
    finally:
        # the server runs uvicorn in a child process: end the whole group we started
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log_file.close()
