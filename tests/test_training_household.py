"""Household training end to end on a small simulated city: the rules baseline runs on the
`ind_*` flags (which are not model features) and `--truth` adds the need metrics (issue 12)."""

from __future__ import annotations

from datetime import date

import pytest

from safetynet.config import get_settings, load_policy
from safetynet.demo import month_starts
from safetynet.features.ingest import ingest
from safetynet.training import household
from safetynet.training.pipeline import TRUTH_COLUMNS, config_from_policy, run

simulator = pytest.importorskip("safetynet.simulator")


def test_household_training_runs_the_rules_baseline_and_reports_need(tmp_path):
    city = tmp_path / "city"
    simulator.simulate(simulator.SimulationConfig(households=1000, truth_replicates=1), city,
                       fmt="parquet", progress=False)
    settings = get_settings()
    ingest(city, settings)
    policy = load_policy()
    data = household.load(settings, policy, as_of=month_starts(date(2024, 1, 1),
                                                                date(2025, 8, 1)),
                          truth_dir=city)
    flags = [c for c in data.spec.indicators if c.startswith("ind_")]
    assert flags and not set(flags) & set(data.spec.features)
    assert set(TRUTH_COLUMNS) <= set(data.frame.columns)
    assert not set(TRUTH_COLUMNS) & set(data.spec.features)
    cfg = config_from_policy(policy, n_trials=2, max_rounds=100, compare_unconstrained=False)
    result = run(data.frame, data.spec, cfg)
    m = result.metrics
    assert "indicator_count" in result.baselines
    for key in ("precision_at_5pct", "recall_at_5pct", "roc_auc"):
        assert f"test_baseline_indicator_count_{key}" in m
    assert m["fold0_baseline_indicator_count_roc_auc"] > 0.5  # the flags carry signal
    for key in ("test_need_precision_at_5pct", "test_need_recall_at_5pct",
                "test_baseline_best_need_precision_at_5pct"):
        assert 0.0 <= m[key] <= 1.0
    for attr in policy.fairness.need_audit_attributes:  # all six exist in a household table
        assert f"test_need_recall_ratio_min_{attr}" in m
    assert m["test_need_months"] == 1.0
