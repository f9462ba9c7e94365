"""The typed policy: the shipped file validates, bad files give one line naming the key, and
every command stops on a bad policy with exit code 2 (never a traceback)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safetynet.cli import app
from safetynet.config import DEFAULT_POLICY_FILE, get_settings, load_policy
from safetynet.policy import CONDITION_OPS, Policy, PolicyError, parse_policy, read_policy
from safetynet.serving.programs import OPS

SHIPPED = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


def edited(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the shipped policy with one line changed."""
    assert old in SHIPPED, old
    path = tmp_path / "policy.toml"
    path.write_text(SHIPPED.replace(old, new, 1), encoding="utf-8")
    return path


def test_shipped_policy_validates_with_the_values_of_the_file():
    policy = load_policy(DEFAULT_POLICY_FILE)
    assert isinstance(policy, Policy)
    assert policy.training.valid_periods == 2  # was 1 in two code defaults
    assert policy.fairness.min_group_positives == 30  # was 20 in the audit's default
    assert policy.tiers.thresholds() == {"red": 0.30, "orange": 0.15, "yellow": 0.07}
    assert set(policy.programmes) >= {"dibao", "medical_assistance"}
    assert load_policy(DEFAULT_POLICY_FILE) is policy  # read and validated once


def test_sections_are_frozen():
    with pytest.raises(ValueError):
        load_policy().tiers.red = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("red = 0.30", 'red = "high"', "[tiers] red: input should be a number"),
        ("orange = 0.15", "orange = 0.45", "[tiers] orange: must be below red"),
        (
            "valid_periods = 2",
            "valid_periods = 1.5",
            "[training] valid_periods: input should be a whole number",
        ),
        ("valid_periods = 2", "valid_periodz = 2", "[training] valid_periodz: unknown key"),
        ("disparity_low = 0.8", "disparity_low = 1.5", "[fairness] disparity_low:"),
        ("capacity_fraction = 0.05", "capacity_fraction = 5", "[outreach] capacity_fraction:"),
        ('fairness = "no_worse"', 'fairness = "lenient"', "[promotion] fairness:"),
        ('["vehicles", "==", 0]', '["vehicles", "=", 0]', "[programmes.dibao] all: a condition is"),
        ("valid_periods = 2", "valid_periodz = 2", "(did you mean valid_periods?)"),
        ("[drift]", "[drifts]", "[drifts]: unknown section (did you mean drift?)"),
    ],
)
def test_bad_value_names_file_section_and_key_in_one_line(tmp_path, old, new, message):
    path = edited(tmp_path, old, new)
    with pytest.raises(PolicyError) as err:
        read_policy(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path} ")
    assert message in text, text


def test_unreadable_or_malformed_file_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        read_policy(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[tiers\nred = 0.3\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        read_policy(broken)


def test_a_missing_section_is_named():
    data = load_policy().model_dump()
    del data["drift"]
    with pytest.raises(PolicyError, match=r"^policy\.toml \[drift\]: section missing$"):
        parse_policy(data)


def test_an_edited_file_is_read_again(tmp_path):
    path = edited(tmp_path, "red = 0.30", "red = 0.40")
    assert load_policy(path).tiers.red == 0.40
    path.write_text(SHIPPED.replace("red = 0.30", "red = 0.35  # edited", 1), encoding="utf-8")
    assert load_policy(path).tiers.red == 0.35


def test_replace_validates_like_a_file():
    policy = load_policy()
    outreach = policy.replace(outreach={"audit_visits_per_district": 9}).outreach
    assert outreach.audit_visits_per_district == 9
    with pytest.raises(PolicyError, match=r"\[tiers\] yellow: must be below orange"):
        policy.replace(tiers={"yellow": 0.2})


def test_programme_ops_are_the_ones_the_matcher_knows():
    assert tuple(OPS) == CONDITION_OPS


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("red = 0.30", 'red = "high"', "[tiers] red"),
        ("cooldown_months = 3", "cooldown_monthz = 3", "[outreach] cooldown_monthz"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [["config"], ["monitor", "--as-of", "2026-01-31"], ["train", "--as-of", "2026-01-31"]],
)
def test_any_command_stops_with_exit_2_and_one_line(tmp_path, monkeypatch, old, new, key, command):
    monkeypatch.setenv("SAFETYNET_POLICY_FILE", str(edited(tmp_path, old, new)))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], result.stderr


def test_cli_process_prints_no_traceback(tmp_path, monkeypatch):
    bad = edited(tmp_path, "red = 0.30", 'red = "high"')
    env = {
        "SAFETYNET_POLICY_FILE": str(bad),
        "SAFETYNET_HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "safetynet.cli", "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert re.fullmatch(
        r"error: \S*policy\.toml \[tiers\] red: input should be a number.*\n", proc.stderr
    ), proc.stderr


def test_config_prints_settings_and_the_effective_policy():
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "model_alias" in out and "champion" in out
    assert "[tiers]\nred = 0.3\norange = 0.15\nyellow = 0.07\n" in out
    assert "[training]" in out and "valid_periods = 2" in out
    assert "[programmes.dibao]" in out
