"""Need metrics (training/need.py) and the truth's need label (training/evaluation.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from safetynet.config import load_policy
from safetynet.training.need import (
    ATTRIBUTE_FALLBACKS,
    listing_weights,
    need_audit_groups,
    need_metrics,
    need_recall_by_group,
)

# 8 households ranked 8..1; 5 in need; the top half (k = 4) lists rows 0-3
SCORE = np.array([8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
NEED = np.array([1, 0, 1, 1, 0, 1, 1, 0], dtype=float)
GROUPS = pd.DataFrame({
    "district": ["A"] * 4 + ["B"] * 4,
    "has_children": [1.0, 0.0] * 4,  # 1 on rows 0, 2, 4, 6
})


def test_precision_recall_and_ratios_by_hand():
    got = need_metrics(SCORE, NEED, GROUPS, fractions=(0.5,), ratio_fraction=0.5, min_needy=1)
    # listed rows 0-3 hold 3 of the 5 households in need
    assert got["test_need_precision_at_50pct"] == pytest.approx(3 / 4)
    assert got["test_need_recall_at_50pct"] == pytest.approx(3 / 5)
    # district A: 3 of 3 reached, B: 0 of 2 -> ratio 0
    assert got["test_need_recall_ratio_min_district"] == pytest.approx(0.0)
    # children: rows 0, 2, 6 in need, 0 and 2 listed -> 2/3; no children: rows 3, 5, 3 listed
    # -> 1/2; ratio (1/2) / (2/3)
    assert got["test_need_recall_ratio_min_has_children"] == pytest.approx(0.75)
    assert got["test_need_positives"] == 5 and got["test_need_rows"] == 8


def test_default_names_and_absent_attributes_are_skipped():
    got = need_metrics(SCORE, NEED, GROUPS, min_needy=1)
    for p in ("1pct", "5pct", "10pct"):
        assert f"test_need_precision_at_{p}" in got and f"test_need_recall_at_{p}" in got
    # 5% of 8 rows -> k = 1: the top row, in need
    assert got["test_need_precision_at_5pct"] == 1.0
    assert got["test_need_recall_at_5pct"] == pytest.approx(1 / 5)
    assert not any("elderly" in key for key in got)  # not in GROUPS


def test_small_groups_are_reported_but_not_in_the_ratio():
    detail = need_recall_by_group(SCORE, NEED, GROUPS[["district"]], fraction=0.5, min_needy=3)
    by = detail.set_index("group")
    assert by.loc["A", "needy"] == 3 and by.loc["A", "counted"]
    assert by.loc["B", "needy"] == 2 and not by.loc["B", "counted"]
    assert by.loc["B", "recall"] == 0.0 and by.loc["A", "reached"] == pytest.approx(3.0)
    got = need_metrics(SCORE, NEED, GROUPS, fractions=(0.5,), ratio_fraction=0.5, min_needy=3)
    assert np.isnan(got["test_need_recall_ratio_min_district"])  # one counted group left


def test_ties_at_the_cut_count_by_expectation_and_order_does_not_matter():
    score = np.array([5, 4, 4, 4, 1, 1, 1, 1, 1, 1], dtype=float)
    need = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1], dtype=float)
    groups = pd.DataFrame({"district": ["A", "A"] + ["B"] * 8})
    # k = 2 of 10: row 0, then one of the three tied rows (each with probability 1/3)
    np.testing.assert_allclose(listing_weights(score, 2), [1, 1 / 3, 1 / 3, 1 / 3] + [0] * 6)
    got = need_metrics(score, need, groups, fractions=(0.2,), ratio_fraction=0.2, min_needy=1)
    assert got["test_need_precision_at_20pct"] == pytest.approx((1 + 1 / 3) / 2)
    assert got["test_need_recall_at_20pct"] == pytest.approx((1 + 1 / 3) / 3)
    detail = need_recall_by_group(score, need, groups, fraction=0.2, min_needy=1)
    assert detail.set_index("group").loc["A", "recall"] == pytest.approx((1 + 1 / 3) / 2)
    perm = np.random.default_rng(0).permutation(10)
    again = need_metrics(score[perm], need[perm], groups.iloc[perm], fractions=(0.2,),
                         ratio_fraction=0.2, min_needy=1)
    assert again == pytest.approx(got)


def test_the_expectation_matches_the_onset_metrics_tie_rule():
    from safetynet.training.metrics import at_k

    rng = np.random.default_rng(1)
    score = rng.integers(0, 5, 200).astype(float)
    need = (rng.random(200) < 0.2).astype(float)
    got = need_metrics(score, need, pd.DataFrame(index=range(200)), fractions=(0.1,))
    ref = at_k(need, score, 20)
    assert got["test_need_precision_at_10pct"] == pytest.approx(ref["precision"])
    assert got["test_need_recall_at_10pct"] == pytest.approx(ref["recall"])


def test_rows_with_unknown_need_are_dropped():
    score = np.concatenate([[100.0, 99.0], SCORE])
    need = pd.array([pd.NA, pd.NA, *NEED.astype(int)], dtype="Int8")
    groups = pd.concat([pd.DataFrame({"district": ["C", "C"], "has_children": [1.0, 1.0]}),
                        GROUPS], ignore_index=True)
    got = need_metrics(score, need, groups, fractions=(0.5,), ratio_fraction=0.5, min_needy=1)
    assert got == pytest.approx(need_metrics(SCORE, NEED, GROUPS, fractions=(0.5,),
                                             ratio_fraction=0.5, min_needy=1))


def test_audit_groups_fall_back_to_the_truth_household_type():
    from safetynet.training.evaluation import TRUTH_ELDERLY_ALONE_COLUMN

    assert ATTRIBUTE_FALLBACKS["elderly_living_alone"] == TRUTH_ELDERLY_ALONE_COLUMN
    frame = pd.DataFrame({"district": ["A"], TRUTH_ELDERLY_ALONE_COLUMN: [1], "x": [0.5]})
    groups = need_audit_groups(frame, load_policy().fairness.need_audit_attributes)
    assert list(groups.columns) == ["district", "elderly_living_alone"]
    own = need_audit_groups(frame.assign(elderly_living_alone=[0]), ["elderly_living_alone"])
    assert own["elderly_living_alone"].tolist() == [0]  # the feature store's value wins


def test_truth_need_is_hardship_or_onset_and_not_assisted(tmp_path):
    from safetynet.pseudonym import pseudonym
    from safetynet.training.evaluation import attach_truth_need

    (tmp_path / "truth").mkdir()
    months = pd.date_range("2024-01-01", periods=5, freq="MS")
    pd.DataFrame({
        "household_id": ["H1"] * 5 + ["H2"] * 5 + ["H3"] * 5,
        "month": list(months.date) * 3,
        # H1: onset in March, never assisted; H2: in hardship and assisted from February;
        # H3: never in hardship
        "in_hardship": [False, False, True, True, True] + [True] * 5 + [False] * 5,
        "onset": [False, False, True, False, False] + [False] * 5 + [False] * 5,
        "on_assistance": [False] * 5 + [False, True, True, True, True] + [False] * 5,
    }).to_parquet(tmp_path / "truth" / "household_months.parquet")
    pd.DataFrame({"household_id": ["H1", "H2", "H3"],
                  "household_type": ["elderly_alone", "couple_children", "adult_alone"]},
                 ).to_parquet(tmp_path / "truth" / "households.parquet")
    secret = b"test-secret"
    key = {h: pseudonym(secret, "household", h) for h in ("H1", "H2", "H3")}
    frame = pd.DataFrame({
        "household_key": [key["H1"], key["H1"], key["H2"], key["H2"], key["H3"], key["H1"]],
        # g = Jan, Feb (onset ahead / in hardship), Jan (not yet assisted), Feb (assisted),
        # Jan (no need), Apr (window Apr+1..Apr+2 runs past May: NA)
        "as_of_date": pd.to_datetime(["2024-02-01", "2024-02-29", "2024-02-01", "2024-03-01",
                                      "2024-02-01", "2024-05-01"]),
    })
    got = attach_truth_need(frame, tmp_path, secret, horizon=2)
    assert got["_truth_need"].tolist()[:5] == [1, 1, 1, 0, 0]
    assert pd.isna(got["_truth_need"].iloc[5])
    assert got["_truth_elderly_living_alone"].tolist() == [1, 1, 0, 0, 0, 1]
