"""A home can be moved (or copied to another machine): MLflow's recorded artifact paths follow it.

Built as a user would: a real registered champion, online store and service database under one
home; the home is moved with `mv`; then a real `safetynet serve` answers `/score` and
`safetynet monitor` runs from the new place.
"""

from __future__ import annotations

import shutil
import sqlite3

import httpx
import pandas as pd
import pytest
from serving_fixtures import build_world, running_server
from typer.testing import CliRunner

from safetynet.config import get_settings
from safetynet.model.backend import ARTIFACT_URI_COLUMNS, rehome_artifacts


def _artifact_uris(db) -> list[str]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return [
            str(v) for t, c in ARTIFACT_URI_COLUMNS if t in tables
            for (v,) in con.execute(f"SELECT {c} FROM {t} WHERE {c} LIKE 'file:%'")
        ]


@pytest.fixture()
def moved_home(tmp_path, monkeypatch):
    old, new = tmp_path / "old-home", tmp_path / "elsewhere" / "home"
    monkeypatch.setenv("SAFETYNET_HOME", str(old))
    monkeypatch.setenv("SAFETYNET_SERVE_MODEL_POLL_SECONDS", "0")
    world = build_world(old, n_households=120)
    features = pd.DataFrame.from_dict(world.rows, orient="index").rename_axis("household_key")
    features.reset_index().assign(street="s1", community="c1").to_parquet(old / "features.parquet")
    assert any(str(old) in uri for uri in _artifact_uris(old / "mlflow.db"))
    new.parent.mkdir()
    shutil.move(old, new)
    monkeypatch.setenv("SAFETYNET_HOME", str(new))
    get_settings.cache_clear()
    yield new
    get_settings.cache_clear()


@pytest.mark.slow
def test_monitor_and_score_work_after_the_home_moved(moved_home):
    with running_server(moved_home, moved_home.parent / "server") as (base, token, _):
        r = httpx.post(f"{base}/score", json={"household_ids": ["hh00000"]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert 0.0 <= r.json()["results"][0]["risk_score"] <= 1.0

    from safetynet.cli import app

    features = str(moved_home / "features.parquet")
    result = CliRunner().invoke(app, ["monitor", "--as-of", "2026-10-31", "--features", features])
    assert result.exit_code == 0, result.output
    uris = _artifact_uris(moved_home / "mlflow.db")
    assert uris and all(uri.startswith((moved_home / "mlartifacts").as_uri()) for uri in uris)


def test_rehoming_is_idempotent_and_leaves_other_uris_alone(moved_home):
    db = moved_home / "mlflow.db"
    root = (moved_home / "mlartifacts").as_uri()
    assert rehome_artifacts(db, root) > 0  # the first call after the move rewrites
    assert rehome_artifacts(db, root) == 0  # and then there is nothing left to do
    with sqlite3.connect(db) as con:
        sources = [s for (s,) in con.execute("SELECT source FROM model_versions")]
    assert sources and all(not s.startswith("file:") or s.startswith(root) for s in sources)
