"""The notebooks run top to bottom on small data (nbclient), so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from safetynet.config import Settings
from safetynet.training.synthetic import household_table
from safetynet.training.train import train_and_log
from tests.training_support import POLICY, config, spec, xor_table

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run(name: str, tmp_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


@pytest.mark.slow
def test_model_report_notebook(tmp_path, monkeypatch, isolated_home):
    settings = Settings(home=isolated_home)
    out = train_and_log(xor_table(200, 12), spec(), config(), settings=settings,
                        promotion=POLICY.promotion, model_name="nb-model", promote_after=True)
    assert out.decision.promoted
    monkeypatch.setenv("MODEL_NAME", "nb-model")
    nb = _run("model_report.ipynb", tmp_path)
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "test_roc_auc" in text and "recall_disparity" in text
    assert out.run_id in text


@pytest.mark.slow
def test_explore_features_notebook(tmp_path, monkeypatch):
    path = tmp_path / "features.parquet"
    household_table(200, 6, 12).drop(columns="truth_prob").to_parquet(path)
    monkeypatch.setenv("FEATURES_PATH", str(path))
    nb = _run("explore_features.ipynb", tmp_path)
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")
