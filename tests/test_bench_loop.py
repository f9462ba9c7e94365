"""benchmarks/bench_loop.py end to end on a tiny city: simulate, ingest, features, first train
and promote, one audit month, two cycles of monitor -> simulated visits -> feedback -> report
-> train -> promote, all through the `safetynet` CLI (in-process, to pay the imports once).
Checks the JSON's shape, that every figure is in range and consistent with the table it
summarizes, and that the plot and the table are written next to the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CYCLE_KEYS = {
    "as_of", "listed", "audited", "model_version", "true_need_precision", "true_need_recall",
    "est_precision", "est_precision_ci", "est_recall", "est_recall_ci",
    "true_need_recall_ratio_min", "covered",
}


def _share(x) -> bool:
    return x is None or 0.0 <= x <= 1.0


def _check_estimate(cycle: dict, key: str) -> None:
    value, ci, status = cycle[f"est_{key}"], cycle[f"est_{key}_ci"], cycle[f"est_{key}_status"]
    if value is None:  # the report said why: no number without enough visits
        assert ci is None and status != "ok"
        assert cycle["covered"][key] is False
    else:
        assert status == "ok" and 0.0 <= ci[0] <= value <= ci[1] <= 1.0
        truth = cycle[f"true_need_{key}"]
        assert cycle["covered"][key] == (ci[0] <= truth <= ci[1])


@pytest.mark.slow
def test_bench_loop_runs_the_cycles_and_writes_json_table_and_plot(tmp_path):
    out = tmp_path / "loop.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYNET_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_loop.py"), "--households", "1500",
         "--cycles", "2", "--audit-months", "1", "--trials", "1", "--seed", "3",
         "--json", str(out), "--home", str(tmp_path / "home"), "--in-process"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())

    assert r["seed"] == 3 and r["settings"]["audit_months"] == 1
    assert any("1 months" in n and "before the first cycle" in n for n in r["notes"])
    assert len(r["audit_months"]) == 1 and len(r["cycles"]) == 2
    months = [m["as_of"] for m in [*r["audit_months"], *r["cycles"]]]
    assert months == sorted(months) and len(set(months)) == 3
    for c in r["cycles"]:
        assert set(c) >= CYCLE_KEYS
        assert c["estimate_source"] == "per_run"
        assert c["listed"] > 0 and 0 <= c["audited"] <= c["listed"]
        assert c["model_version"].isdigit() and c["gate"] in ("promoted", "refused")
        assert _share(c["true_need_precision"]) and _share(c["true_need_recall"])
        assert 0 <= c["listed_needy"] <= c["cohort_needy"] <= c["cohort"]
        assert c["true_need_recall"] == round(c["listed_needy"] / c["cohort_needy"], 4)
        _check_estimate(c, "precision")
        _check_estimate(c, "recall")
        ratios = c["true_need_recall_ratio_min"]
        assert {"district", "has_children"} <= set(ratios)
        assert all(_share(v) for v in ratios.values())
    # the model that scored the first cycle is the one promoted at setup
    assert r["audit_months"][0]["model_version"] == r["cycles"][0]["model_version"] == "1"

    s = r["summary"]
    precision = [c["true_need_precision"] for c in r["cycles"]]
    assert s["first_true_need_precision"] == precision[0]
    assert s["last_true_need_precision"] == precision[-1]
    assert s["largest_drop"] == round(max(0.0, precision[0] - precision[1]), 4)
    n_cov = sum(c["covered"]["precision"] for c in r["cycles"])
    assert s["covered_precision"] == f"{n_cov}/2"
    assert s["targets"]["setting as in the issue (>= 6 cycles, >= 20,000 households)"] is False
    assert r["total_seconds"] > 0 and r["steps_seconds"]["train"] > 0

    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = out.with_suffix(".md").read_text()
    assert "| cycle 2 |" in table and "| audit 1 |" in table
    assert "| cycle 2 |" in proc.stdout
