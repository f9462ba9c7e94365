"""Simulated caseworker visits: the simulator's truth answers the visits on a worklist.

This stands in for caseworkers in the demo and in tests of the closed loop. It lives in
the simulator because it reads the truth; nothing outside the simulator and evaluation may.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from safetynet.pseudonym import pseudonymize

OUTCOME_COLUMNS = [
    "household_key", "visit_date", "caseworker_key_id", "outcome", "hardship_type",
    "programmes_referred", "disagrees_with_score", "disagreement_code", "worklist_item_id",
    "audit", "submission_id",
]


def answer_visits(
    worklist: pd.DataFrame,
    truth_dir: Path,
    secret: bytes,
    visit_date: date,
    *,
    caseworker_key_id: str = "demo-caseworker",
    unreachable_rate: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """One outcome per worklist item, as a caseworker would record it (VisitOutcome fields).

    The household is in hardship if the truth says so in the visit's month (or the latest
    simulated month before it). A share `unreachable_rate` of visits find nobody at home.
    Listed and audit items are answered alike; `audit` is copied from the item (the feedback
    store takes it from the linked item anyway).
    """
    months = pd.read_parquet(
        truth_dir / "household_months.parquet",
        columns=["household_id", "month", "in_hardship", "rigid_expenditure_pc", "poverty_line"],
    )
    months["month"] = pd.to_datetime(months["month"])
    seen = months[months["month"] <= pd.Timestamp(visit_date)]
    state = seen[seen["month"] == seen["month"].max()].copy()
    state["household_key"] = pseudonymize(secret, "household", state["household_id"].astype(str))
    items = worklist.merge(state, on="household_key", how="left")

    rng = np.random.default_rng(seed)
    in_need = items["in_hardship"].fillna(False).astype(bool).to_numpy()
    unreachable = rng.random(len(items)) < unreachable_rate
    outcome = np.where(unreachable, "could_not_reach",
                       np.where(in_need, "hardship_confirmed", "not_in_hardship"))
    rigid = (items["rigid_expenditure_pc"] > 0.3 * items["poverty_line"]).fillna(False)
    confirmed = outcome == "hardship_confirmed"
    high_tier = items["tier"].isin(["red", "orange"]).to_numpy()
    disagrees = (outcome == "not_in_hardship") & high_tier
    return pd.DataFrame({
        "household_key": items["household_key"],
        "visit_date": visit_date.isoformat(),
        "caseworker_key_id": caseworker_key_id,
        "outcome": outcome,
        "hardship_type": np.where(confirmed, np.where(rigid, "rigid_expenditure", "dibao"), ""),
        "programmes_referred": np.where(confirmed, np.where(rigid, "medical_assistance", "dibao"),
                                        ""),
        "disagrees_with_score": disagrees,
        "disagreement_code": np.where(disagrees, "score_too_high", ""),
        "worklist_item_id": items["item_id"],
        "audit": items["audit"].astype(bool) if "audit" in items else False,
        "submission_id": "sim-" + items["item_id"].astype(str),
    })[OUTCOME_COLUMNS]
