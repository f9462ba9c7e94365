"""The `simulate` command and the documented parameter table."""

import json
from pathlib import Path

from typer.testing import CliRunner

from safetynet.cli import app
from safetynet.simulator.config import DOC_END, DOC_START, render_config_table

ROOT = Path(__file__).resolve().parents[1]


def test_docs_parameter_table_is_current():
    text = (ROOT / "docs/simulator.md").read_text(encoding="utf-8")
    block = text.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip()
    assert block == render_config_table(), (
        "docs/simulator.md is stale: run `python -m safetynet.simulator.config docs/simulator.md`")


def test_cli_simulates_a_small_city(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETYNET_HOME", str(tmp_path / "home"))
    from safetynet.config import get_settings

    get_settings.cache_clear()
    toml = tmp_path / "rates.toml"
    toml.write_text("duplicate_rate = 0.0\n")
    out = tmp_path / "city"
    args = ["simulate", "--households", "150", "--months", "6", "--seed", "3", "--out",
            str(out), "--config", str(toml), "--truth-replicates", "1", "--no-progress"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["households"] == 150 and manifest["config"]["duplicate_rate"] == 0.0
    assert all(f["injected"].get("duplicates", 0) == 0 for f in manifest["files"])
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "exists" in again.output
    bad = CliRunner().invoke(app, [*args[:-1], "--start", "2023-13", "--overwrite"])
    assert bad.exit_code != 0
    # default output directory is under SAFETYNET_HOME
    r = CliRunner().invoke(app, ["simulate", "--households", "50", "--months", "2",
                                 "--truth-replicates", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "home/city/manifest.json").exists()
    get_settings.cache_clear()
