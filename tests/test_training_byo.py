"""`safetynet train --table`: bring your own table, with and without a time column."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from safetynet.cli import app
from tests.training_support import xor_table


@pytest.fixture()
def table_path(tmp_path):
    path = tmp_path / "mine.parquet"
    xor_table(n_entities=200, n_periods=12).drop(columns="p_true").to_parquet(path)
    return path


def test_train_table_grouped_cv_without_time(table_path, monkeypatch):
    runner = CliRunner()
    res = runner.invoke(app, [
        "train", "--table", str(table_path), "--label", "y", "--entity", "entity",
        "--group", "region", "--audit", "sex", "--trials", "2",
        "--no-compare-unconstrained", "--model-name", "byo", "--promote",
    ])
    assert res.exit_code == 0, res.output
    assert "registered byo v1 as challenger" in res.output
    assert "test_precision_at_5pct" in res.output and "explain_ms_per_row" in res.output
    from mlflow import MlflowClient

    from safetynet.config import get_settings
    from safetynet.model import configure

    configure(get_settings())
    run = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("safetynet-training").experiment_id])[0]
    assert run.data.tags["safetynet.split"] == "group"
    assert "test_baseline_best_precision_at_5pct" in run.data.metrics
    # sex and region are audit attributes: never features
    assert '"sex"' not in run.data.params.get("label_config", "")


def test_train_table_clear_errors(table_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--table", str(table_path), "--label", "nope",
                              "--entity", "entity"])
    assert res.exit_code == 2 and "columns not in the table: ['nope']" in res.output
    res = runner.invoke(app, ["train", "--table", str(table_path), "--label", "x1",
                              "--entity", "entity"])
    assert res.exit_code == 2 and "must be 0/1" in res.output
    res = runner.invoke(app, ["promote", "--model-name", "missing"])
    assert res.exit_code == 2 and "no registered model" in res.output
