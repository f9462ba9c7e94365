"""Temporal folds never leak across the label horizon; grouped folds never share an entity;
labels and cohort follow policy.toml [label]."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safetynet.config import load_policy
from safetynet.training.labels import build_labels, household_training_frame
from safetynet.training.splits import (
    assert_no_leakage,
    grouped_folds,
    temporal_folds,
    to_periods,
)


@settings(max_examples=60, deadline=None)
@given(
    n_periods=st.integers(12, 40),
    horizon=st.integers(0, 6),
    n_folds=st.integers(1, 4),
    test_periods=st.integers(1, 3),
    valid_periods=st.integers(1, 3),
)
def test_no_training_label_window_reaches_the_test_period(
    n_periods, horizon, n_folds, test_periods, valid_periods
):
    periods = np.repeat(np.arange(n_periods), 3)
    try:
        folds = temporal_folds(periods, horizon, n_folds, test_periods, valid_periods)
    except ValueError:
        assert n_periods < 2 * horizon + test_periods + valid_periods + 2
        return
    for fold in folds:
        train = np.concatenate([fold.fit, fold.valid])
        # the label window of a training row t is (t, t + H]
        assert periods[train].max() + horizon < periods[fold.test].min()
        assert periods[fold.fit].max() + horizon < periods[fold.valid].min()
        assert_no_leakage(periods, fold, horizon)
        assert len(np.intersect1d(train, fold.test)) == 0
    # rolling forward, the last fold tests the latest period
    assert periods[folds[-1].test].max() == n_periods - 1
    starts = [periods[f.test].min() for f in folds]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_temporal_folds_on_monthly_dates_and_last_labelled():
    dates = pd.Series(pd.date_range("2023-01-01", periods=24, freq="MS")).repeat(2)
    periods = to_periods(dates.reset_index(drop=True))
    folds = temporal_folds(periods, horizon=6, n_folds=2, last_labelled=periods.max() - 6)
    final = folds[-1]
    assert periods[final.test].max() == periods.max() - 6  # latest fully labelled month
    assert final.info["test_start"] - final.info["valid_end"] == 7


def test_leakage_check_catches_an_overlapping_fold():
    from safetynet.training.splits import Fold

    periods = np.arange(10)
    bad = Fold(fit=np.arange(0, 5), valid=np.array([5]), test=np.array([7]))
    with pytest.raises(AssertionError):
        assert_no_leakage(periods, bad, horizon=2)


def test_not_enough_history_is_a_clear_error():
    with pytest.raises(ValueError, match="not enough history"):
        temporal_folds(np.arange(5), horizon=6)


def test_grouped_folds_keep_entities_apart():
    ent = np.repeat(np.arange(50), 4)
    folds = grouped_folds(ent, n_folds=3, seed=1)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested) == list(range(200))  # each row tested exactly once
    for f in folds:
        parts = [set(ent[f.fit]), set(ent[f.valid]), set(ent[f.test])]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2])
        assert not (parts[1] & parts[2])


def _assistance(rows):
    return pd.DataFrame(rows, columns=["household_key", "programme", "start_date", "end_date",
                                       "knowledge_date"]).astype(
        {"start_date": "datetime64[ns]", "end_date": "datetime64[ns]",
         "knowledge_date": "datetime64[ns]"})


def test_labels_onset_cohort_and_partial_labels():
    cfg = load_policy().replace(label={
        "horizon_months": 6,
        "onset_programmes": ["dibao", "marginal_dibao", "special_hardship", "temporary"],
        "long_term_programmes": ["dibao", "special_hardship"]}).label
    keys = pd.DataFrame({
        "household_key": ["a", "a", "b", "c", "d", "e", "f"],
        "as_of_date": pd.to_datetime(["2024-01-01", "2024-09-01", "2024-01-01", "2024-01-01",
                                      "2024-01-01", "2024-01-01", "2024-01-01"]),
    })
    assistance = _assistance([
        ("a", "temporary", "2024-03-15", "2024-05-15", "2024-04-01"),  # onset within 6 months
        ("b", "dibao", "2023-05-01", None, "2023-05-10"),  # long-term at as-of: out of cohort
        ("c", "marginal_dibao", "2024-08-01", None, "2024-08-10"),  # starts after the horizon
        ("d", "dibao", "2023-05-01", None, "2024-02-01"),  # on dibao, but known only later
        ("e", "rigid_expenditure", "2024-02-01", None, "2024-02-05"),  # not an onset programme
        ("f", "dibao", "2024-04-01", None, "2025-06-01"),  # known after the snapshot
    ])
    snapshot = pd.Timestamp("2025-01-31")
    got = build_labels(keys, assistance, cfg, snapshot).set_index(["household_key", "as_of_date"])
    jan = pd.Timestamp("2024-01-01")
    assert got.loc[("a", jan), "label"] == 1 and got.loc[("a", jan), "in_cohort"]
    assert not got.loc[("b", jan), "in_cohort"]
    assert got.loc[("c", jan), "label"] == 0
    assert got.loc[("d", jan), "in_cohort"]  # the service could not have known at the as-of date
    assert got.loc[("e", jan), "label"] == 0
    assert got.loc[("f", jan), "label"] == 0  # unknown by the snapshot (2025-01-31)
    sep = pd.Timestamp("2024-09-01")
    assert not got.loc[("a", sep), "fully_labelled"] and pd.isna(got.loc[("a", sep), "label"])
    feats = keys.assign(x=1.0)
    frame = household_training_frame(feats, assistance, cfg, snapshot)
    assert set(frame["household_key"]) == {"a", "c", "d", "e", "f"}
    assert frame["label"].dtype == np.int8 and frame["label"].sum() == 1


def test_truth_is_joined_by_pseudonym_and_last_complete_month(tmp_path):
    from safetynet.pseudonym import pseudonym
    from safetynet.training.evaluation import attach_truth

    (tmp_path / "truth").mkdir()
    pd.DataFrame({
        "household_id": ["H1", "H1", "H2"],
        "month": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-01"]).date,
        "onset_prob_6m": [0.1, 0.2, 0.3],
    }).to_parquet(tmp_path / "truth" / "household_months.parquet")
    secret = b"test-secret"
    h1 = pseudonym(secret, "household", "H1")
    frame = pd.DataFrame({
        "household_key": [h1, h1, h1, "unknown"],
        "as_of_date": pd.to_datetime(["2024-01-31", "2024-02-01", "2024-02-29", "2024-01-31"]),
    })
    got = attach_truth(frame, tmp_path, secret)["_truth_prob"].to_numpy()
    np.testing.assert_allclose(got[:3], [0.1, 0.1, 0.2], rtol=1e-6)
    assert np.isnan(got[3])


def test_true_onset_window_follows_the_last_complete_month(tmp_path):
    """`_truth_onset` is the event `_truth_prob` is the probability of: an onset in months
    g+1..g+H after the last complete month g; NA when the window runs past the truth."""
    from safetynet.pseudonym import pseudonym
    from safetynet.training.evaluation import attach_truth_outcomes

    (tmp_path / "truth").mkdir()
    months = pd.date_range("2024-01-01", periods=6, freq="MS")
    pd.DataFrame({
        "household_id": ["H1"] * 6,
        "month": months.date,
        "in_hardship": [False, True, True, False, False, False],
        "onset": [False, True, False, False, False, False],  # onset in February
        "onset_prob_6m": [0.5] * 6,
    }).to_parquet(tmp_path / "truth" / "household_months.parquet")
    secret = b"test-secret"
    h1 = pseudonym(secret, "household", "H1")
    frame = pd.DataFrame({"household_key": [h1] * 4, "as_of_date": pd.to_datetime(
        ["2024-02-01", "2024-03-01", "2024-03-31", "2024-04-01"])})
    got = attach_truth_outcomes(frame, tmp_path, secret, horizon=2)
    # g = Jan: window Feb..Mar holds the onset; g = Feb: Mar..Apr does not (a window that
    # started at g would); 03-31 and 04-01 both complete March: Apr..May
    assert got["_truth_onset"].tolist() == [1, 0, 0, 0]
    assert got["_truth_in_hardship"].tolist() == [False, True, True, True]
    late = pd.DataFrame({"household_key": [h1], "as_of_date": pd.to_datetime(["2024-06-01"])})
    assert pd.isna(attach_truth_outcomes(late, tmp_path, secret, horizon=2)["_truth_onset"][0])
