"""The pipeline's truth step (need metrics on simulated data) and the rules baseline on
indicator columns that are not model features (issue 12, items 1 and 7a)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from training_support import config, spec, xor_table

from safetynet.training.need import need_metrics
from safetynet.training.pipeline import (
    TRUTH_COLUMNS,
    TRUTH_ELDERLY_ALONE_COLUMN,
    TRUTH_NEED_COLUMN,
    run,
)

FEATURES = ["x1", "x2", "x3", "x4", "x5", "x6"]


@pytest.fixture(scope="module")
def need_run():
    """xor table with a need truth that the label only partly sees, two test months, and
    indicator flags that are not model features."""
    frame = xor_table(n_entities=400, n_periods=16, seed=3)
    rng = np.random.default_rng(7)
    frame[TRUTH_NEED_COLUMN] = ((frame["p_true"] + 0.2 * rng.random(len(frame))) > 0.3
                                ).astype("Int8")
    frame.loc[frame.index[:40], TRUTH_NEED_COLUMN] = pd.NA  # unknown need: dropped
    alone = frame["entity"].str[1:].astype(int) % 5 == 0
    frame[TRUTH_ELDERLY_ALONE_COLUMN] = alone.astype("Int8")
    frame["ind_a"] = (frame["x1"] * frame["x2"] < 0).astype("int8")
    frame["ind_b"] = (frame["x3"] > 1).astype("int8")
    cfg = config(test_periods=2)
    cfg.fairness = cfg.fairness.model_copy(update={
        "need_audit_attributes": ("region", "elderly_living_alone"), "min_group_positives": 5})
    result = run(frame, spec(features=FEATURES, indicators=["ind_a", "ind_b"]), cfg)
    return frame, cfg, result


def test_truth_columns_are_reserved_never_features():
    frame = xor_table(n_entities=50, n_periods=6)
    for col in TRUTH_COLUMNS:
        frame[col] = 0.5
    assert {TRUTH_NEED_COLUMN, TRUTH_ELDERLY_ALONE_COLUMN} <= set(TRUTH_COLUMNS)
    names = spec().feature_columns(frame)
    assert not set(names) & set(TRUTH_COLUMNS)
    with pytest.raises(ValueError, match="not allowed as model features"):
        spec(features=["x1", TRUTH_NEED_COLUMN]).feature_columns(frame)


def test_rules_baseline_counts_indicator_columns_that_are_not_features(need_run):
    _, _, result = need_run
    m = result.metrics
    assert "ind_a" not in result.features and "ind_b" not in result.features
    assert "indicator_count" in result.baselines
    for key in ("precision_at_5pct", "recall_at_5pct", "average_precision"):
        assert f"test_baseline_indicator_count_{key}" in m
    # ind_a is the xor interaction: the rules baseline ranks far above the base rate
    assert m["test_baseline_indicator_count_precision_at_10pct"] > 2 * m["test_base_rate"]


def test_need_metrics_are_one_ranking_per_test_month_then_averaged(need_run):
    frame, cfg, result = need_run
    m = result.metrics
    test = frame.iloc[result.test_index].reset_index(drop=True)
    assert m["test_need_months"] == 2 == test["month"].nunique()
    groups = pd.DataFrame({"region": test["region"],
                           "elderly_living_alone": test[TRUTH_ELDERLY_ALONE_COLUMN]})
    score = result.test_frame["score"].to_numpy()
    per_month = [
        need_metrics(score[rows], test[TRUTH_NEED_COLUMN].iloc[rows], groups.iloc[rows],
                     cfg.fractions, ("region", "elderly_living_alone"), 0.05, 5)
        for rows in (np.flatnonzero(test["month"] == t) for t in sorted(test["month"].unique()))
    ]
    for key in ("test_need_precision_at_5pct", "test_need_recall_at_1pct",
                "test_need_recall_at_10pct", "test_need_recall_ratio_min_region",
                "test_need_recall_ratio_min_elderly_living_alone"):
        assert m[key] == pytest.approx(np.mean([pm[key] for pm in per_month])), key
    # the pooled ranking over both months would be a different figure
    pooled = need_metrics(score, test[TRUTH_NEED_COLUMN], groups, cfg.fractions)
    assert pooled["test_need_positives"] == pytest.approx(
        sum(pm["test_need_positives"] for pm in per_month))


def test_best_baseline_need_figures_and_group_table(need_run):
    _, _, result = need_run
    m, best = result.metrics, result.params["best_baseline"]
    assert best in result.baselines
    for key in ("need_precision_at_5pct", "need_recall_at_5pct",
                "need_recall_ratio_min_region"):
        assert 0.0 <= m[f"test_baseline_best_{key}"] <= 1.0
    table = result.need_by_group
    assert set(table["ranking"]) == {"model", "baseline_best"}
    assert table["as_of"].nunique() == 2
    model = table[(table["ranking"] == "model") & (table["attribute"] == "region")]
    assert set(model["group"]) == {"a", "b", "c"}
    ratio = model.groupby("as_of")["recall"].agg(lambda r: r.min() / r.max()).mean()
    assert m["test_need_recall_ratio_min_region"] == pytest.approx(ratio)


def test_without_need_truth_no_need_metrics():
    result = run(xor_table(n_entities=200, n_periods=12), spec(), config())
    assert not any("need_" in k for k in result.metrics)
    assert result.need_by_group is None


def test_model_card_opens_with_need_and_logs_the_group_table(need_run, tmp_path):
    import mlflow

    from safetynet.config import Settings
    from safetynet.model import configure
    from safetynet.training.train import NEED_BY_GROUP_FILE, train_and_log
    from tests.training_support import POLICY

    frame, cfg, _ = need_run
    settings = Settings(home=tmp_path / "home")
    out = train_and_log(frame, spec(features=FEATURES, indicators=["ind_a", "ind_b"]), cfg,
                        settings=settings, promotion=POLICY.promotion, model_name="need-test")
    configure(settings)
    local = tmp_path / "artifacts"
    mlflow.artifacts.download_artifacts(run_id=out.run_id, dst_path=str(local))
    card = (local / "model_card.md").read_text(encoding="utf-8")
    sections = [line for line in card.splitlines() if line.startswith("## ")]
    assert sections[0].startswith("## Need") and "in hardship" in card
    assert f"| need precision@5pct | {out.result.metrics['test_need_precision_at_5pct']:.3f}" \
        in card
    table = pd.read_csv(local / NEED_BY_GROUP_FILE)
    assert {"as_of", "ranking", "attribute", "group", "recall"} <= set(table.columns)
    logged = mlflow.MlflowClient().get_run(out.run_id).data
    assert "test_baseline_best_need_recall_at_5pct" in logged.metrics
    assert logged.params["best_baseline"] == out.result.params["best_baseline"]


def test_calibration_in_the_large_is_logged(need_run):
    frame, _, result = need_run
    m, fold = result.metrics, result.folds[-1]
    assert m["test_mean_predicted"] == pytest.approx(result.test_frame["score"].mean())
    valid = frame[(frame["month"] >= fold["valid_start"]) & (frame["month"] <= fold["valid_end"])]
    assert len(valid) == fold["n_valid"]
    assert m["test_calibration_base_rate"] == pytest.approx(valid["y"].mean())
