from pathlib import Path

import pytest

from safetynet.config import Settings, get_settings, load_policy


def test_environment_overrides_config_file(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('model_name = "from-file"\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("SAFETYNET_HOME", str(tmp_path))
    monkeypatch.setenv("SAFETYNET_LOG_LEVEL", "WARNING")
    s = Settings()
    assert s.model_name == "from-file"
    assert s.log_level == "WARNING"
    assert s.db_url.startswith("sqlite:///") and str(tmp_path) in s.db_url


def test_production_mode_requires_secret_and_demo_generates_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETYNET_HOME", str(tmp_path))
    monkeypatch.setenv("SAFETYNET_MODE", "production")
    with pytest.raises(RuntimeError, match="PSEUDONYM_SECRET"):
        Settings().secret()
    monkeypatch.setenv("SAFETYNET_MODE", "demo")
    first = Settings().secret()
    assert len(first) == 64 and Settings().secret() == first  # persisted under home
    assert (tmp_path / "demo_secret.key").exists()


def test_every_setting_is_documented():
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in doc, name


def test_policy_has_the_sections_other_modules_read():
    get_settings.cache_clear()
    policy = load_policy()
    assert {"label", "indicators", "tiers", "outreach", "drift"} <= set(type(policy).model_fields)
    tiers = policy.tiers
    assert tiers.red > tiers.orange > tiers.yellow > 0
