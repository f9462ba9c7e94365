"""The labels caseworkers' visit outcomes become, merged with programme-entry labels."""

from __future__ import annotations

from datetime import date

import pandas as pd

from safetynet.training.labels import merge_labels, outcome_labels


def test_outcome_labels_cover_the_periods_whose_horizon_contains_the_visit():
    out = pd.DataFrame(
        {
            "household_key": ["a", "b", "b", "c", "d"],
            "visit_date": pd.to_datetime(
                ["2026-03-15", "2026-03-15", "2026-05-01", "2026-03-15", "2026-03-15"]
            ),
            "outcome": [
                "hardship_confirmed",
                "not_in_hardship",
                "hardship_confirmed",
                "could_not_reach",
                "not_in_hardship",
            ],
        }
    )
    as_of = [date(2025, 8, 31), date(2025, 9, 30), date(2026, 1, 31), date(2026, 3, 15)]
    lab = outcome_labels(out, as_of, horizon_months=6)
    got = {(r.household_key, str(r.as_of_date.date())): r.label for r in lab.itertuples()}
    # 2025-08-31 + 6 months = 2026-02-28 < visit: not labelled; visit on the as-of date: not either
    assert got == {
        ("a", "2025-09-30"): 1,
        ("a", "2026-01-31"): 1,
        ("b", "2025-09-30"): 0,
        ("b", "2026-01-31"): 1,  # confirmation in the window wins
        ("d", "2025-09-30"): 0,
        ("d", "2026-01-31"): 0,
        ("b", "2026-03-15"): 1,
    }
    observed = pd.DataFrame(
        {
            "household_key": ["a", "d", "e"],
            "label": [0, 1, 0],
            "as_of_date": pd.to_datetime(["2026-01-31"] * 3),
        }
    )
    merged = merge_labels(observed, lab).set_index("household_key")
    assert merged["label"].to_dict() == {"a": 1, "d": 1, "e": 0}  # "not in hardship" never erases
    assert merged["label_source"].to_dict() == {"a": "caseworker", "d": "programme", "e": "none"}
    assert merged["verified"].to_dict() == {"a": True, "d": True, "e": False}
