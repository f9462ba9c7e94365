"""One `model_alias` setting: `serve` and `monitor` use the same registered model."""

from __future__ import annotations

import pandas as pd
import pytest
from monitoring_support import make_features, register_champion, train_bundle
from typer.testing import CliRunner

from safetynet.config import get_settings


@pytest.mark.slow
def test_monitor_and_serve_use_the_configured_model_alias(tmp_path, monkeypatch):
    from safetynet.cli import app
    from safetynet.serving.model import ModelHolder

    monkeypatch.setenv("SAFETYNET_MODEL_ALIAS", "staging")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.model_alias == "staging"
    champion = register_champion(train_bundle(seed=0).booster, settings)
    staging = register_champion(train_bundle(seed=1).booster, settings, alias="staging")
    assert champion != staging
    path = tmp_path / "features.parquet"
    make_features(300, seed=3).assign(as_of_date=pd.Timestamp("2026-01-31")).to_parquet(path)

    runner = CliRunner()
    res = runner.invoke(app, ["monitor", "--as-of", "2026-01-31", "--features", str(path)])
    assert res.exit_code == 0, res.output
    assert f"v{staging}" in res.output  # the configured alias, not a hard-coded "champion"
    holder = ModelHolder(settings)  # what `serve` serves
    assert holder.alias == "staging" and holder.current.version == staging

    res = runner.invoke(
        app, ["monitor", "--as-of", "2026-01-31", "--features", str(path), "--alias", "champion"]
    )  # an explicit alias still wins
    assert res.exit_code == 0, res.output
    assert f"v{champion}" in res.output
