"""The registered model is the evaluated recipe refitted on the latest labels; evaluation is not.

Small XOR table, integer months 0..15, horizon 2, valid 2, test 1, two folds:
final fold fit <= 8, valid 11..12, test 15; fold 0 fit <= 7, valid 10..11, test 14;
refit: fit <= 11, early stopping and calibration on 14..15. Month 9 is used by no fold, only by
the refit, so flipping its labels must change the registered model and nothing evaluated.
"""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from safetynet.config import Settings
from safetynet.model import configure, load_bundle
from safetynet.training.pipeline import refit_slices, run
from safetynet.training.train import train_and_log
from tests.training_support import POLICY, config, spec, xor_table

NAME = "refit-model"
ONLY_REFIT_MONTH = 9


def _evaluated(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items()
            if k.startswith(("test_", "fold", "fairness_", "baseline_", "search_"))
            and not k.startswith("time_")}


@pytest.fixture(scope="module")
def runs():
    table = xor_table()
    flipped = table.copy()
    month = flipped["month"] == ONLY_REFIT_MONTH
    flipped.loc[month, "y"] = 1 - flipped.loc[month, "y"]
    return table, run(table, spec(), config()), run(flipped, spec(), config())


def test_refit_uses_the_latest_labels_with_a_horizon_gap_before_calibration(runs):
    table, res, _ = runs
    rs = refit_slices(table, spec(), config())
    months = table["month"].to_numpy()
    final = res.folds[-1]
    assert final["fit_end"] == 8 and final["test_start"] == 15
    assert months[rs.fit].max() == 11 > final["fit_end"]  # beyond the evaluated model's cut
    assert set(months[rs.calibration]) == {14, 15}  # the latest valid_periods months
    assert months[rs.fit].max() + 2 < months[rs.calibration].min()  # no shared label window
    assert res.refit["refit_max_as_of"] == "11" and res.refit["refit_calibration"] == "14..15"
    assert res.metrics["refit_rows"] == len(rs.fit) > res.metrics["fold1_fit_rows"]
    assert res.metrics["refit_periods_after_fold_fit"] == 3
    assert res.metrics["explain_ms_per_row"] <= 0.5
    assert res.booster is not res.eval_booster


def test_labels_only_the_refit_sees_change_the_registered_model_not_the_evaluation(runs):
    table, res, res_flipped = runs
    X = table[res.features].to_numpy(dtype=np.float32)
    # evaluation is identical: same metrics, same evaluated model
    assert _evaluated(res_flipped.metrics) == _evaluated(res.metrics)
    np.testing.assert_array_equal(res.eval_booster.predict(X), res_flipped.eval_booster.predict(X))
    # the registered model learnt the flipped month
    served = res.calibrator.transform(res.booster.predict(X))
    served_flipped = res_flipped.calibrator.transform(res_flipped.booster.predict(X))
    assert np.abs(served - served_flipped).max() > 0.05


def test_without_refit_the_evaluated_model_is_registered(runs):
    table, res, _ = runs
    plain = run(table, spec(), config(refit=False))
    assert plain.booster is plain.eval_booster and plain.refit == {"refit": False}
    assert _evaluated(plain.metrics) == _evaluated(res.metrics)
    assert "refit_rows" not in plain.metrics


def test_registry_holds_the_refit_and_the_champion_comparison_uses_the_evaluated_model(tmp_path):
    settings = Settings(home=tmp_path / "mlhome")
    table = xor_table()
    first = train_and_log(table, spec(), config(), settings=settings, promotion=POLICY.promotion,
                          model_name=NAME, promote_after=True, feature_set_version="test")
    assert first.decision.promoted, first.decision.summary()
    configure(settings)
    client = MlflowClient()
    run1 = client.get_run(first.run_id)
    for key in ("refit_rows", "refit_calibration_rows", "fold0_fit_rows", "fold1_fit_rows",
                "explain_ms_per_row", "eval_explain_ms_per_row", "time_refit_seconds"):
        assert key in run1.data.metrics, key
    assert run1.data.params["refit_max_as_of"] == "11"
    assert run1.data.tags["safetynet.registered_model"] == "refit"
    assert {a.path for a in client.list_artifacts(first.run_id, "evaluated_model")} == {
        "evaluated_model/model.txt", "evaluated_model/calibrator.json"}
    bundle = load_bundle("champion", settings, name=NAME)
    X = table[bundle.features].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(bundle.booster.predict(X), first.result.booster.predict(X))
    assert not np.allclose(bundle.booster.predict(X), first.result.eval_booster.predict(X))

    # same data again: the champion's evaluated model scores exactly what its own run measured
    # (its refit calibrated on this test month and would have an unfair advantage)
    second = train_and_log(table, spec(), config(), settings=settings, promotion=POLICY.promotion,
                           model_name=NAME, feature_set_version="test")
    m2 = client.get_run(second.run_id).data.metrics
    assert m2["champion_compared_evaluated_model"] == 1.0
    assert m2["champion_test_precision_at_5pct"] == pytest.approx(
        run1.data.metrics["test_precision_at_5pct"])
    assert m2["champion_test_brier"] == pytest.approx(run1.data.metrics["test_brier"])


def test_a_champion_from_before_the_refit_is_compared_through_its_registered_model(tmp_path):
    settings = Settings(home=tmp_path / "mlhome")
    table = xor_table()
    old = train_and_log(table, spec(), config(refit=False), settings=settings,
                        promotion=POLICY.promotion, model_name=NAME, promote_after=True,
                        feature_set_version="test")
    assert old.decision.promoted, old.decision.summary()
    configure(settings)
    client = MlflowClient()
    assert not list(client.list_artifacts(old.run_id, "evaluated_model"))
    new = train_and_log(table, spec(), config(), settings=settings, promotion=POLICY.promotion,
                        model_name=NAME, feature_set_version="test")
    m = client.get_run(new.run_id).data.metrics
    assert m["champion_compared_evaluated_model"] == 0.0
    assert m["champion_test_precision_at_5pct"] == pytest.approx(
        old.result.metrics["test_precision_at_5pct"])
