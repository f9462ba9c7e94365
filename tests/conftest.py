"""Shared test setup: every test runs with its own empty SAFETYNET_HOME."""

from __future__ import annotations

import pytest

from safetynet.config import get_settings


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Point SAFETYNET_HOME at a fresh directory so no test touches ./.safetynet or another test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SAFETYNET_HOME", str(home))
    for var in ("SAFETYNET_CONFIG", "SAFETYNET_DATABASE_URL", "SAFETYNET_MLFLOW_TRACKING_URI",
                "SAFETYNET_ONLINE_STORE", "SAFETYNET_MODE", "SAFETYNET_PSEUDONYM_SECRET"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
