"""The truth: a continuous, informative onset probability; outcomes are a lagged, partial view."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from safetynet.simulator import SimulationConfig, simulate
from safetynet.simulator.io import read_table

CFG = SimulationConfig(households=2000, months=24, seed=5, truth_replicates=4)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, dict, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("truth") / "city"
    manifest = simulate(CFG, out, progress=False)
    months = pd.read_parquet(out / "truth/household_months.parquet")
    months["month"] = pd.to_datetime(months["month"])
    households = pd.read_parquet(out / "truth/households.parquet")
    return out, manifest, months, households


def _onset_within(months: pd.DataFrame, horizon: int) -> pd.Series:
    """Realised onset in the `horizon` months after each household-month."""
    wide = months.pivot(index="household_id", columns="month", values="onset").astype(int)
    arr = wide.to_numpy()
    c = np.concatenate([np.zeros((len(arr), 1)), np.cumsum(arr, axis=1)], axis=1)
    n = arr.shape[1]
    ahead = np.full(arr.shape, np.nan)
    for j in range(n - horizon):  # only months with a full horizon observed
        ahead[:, j] = c[:, j + 1 + horizon] - c[:, j + 1]
    s = pd.DataFrame(ahead, index=wide.index, columns=wide.columns).stack()
    return (s > 0).rename("future_onset")


def test_truth_tables_have_keys_and_valid_probabilities(city):
    _, _, months, households = city
    assert len(months) == CFG.households * CFG.months
    assert months["household_id"].isin(households["household_id"]).all()
    p = months["onset_prob_6m"]
    assert p.notna().all() and p.between(0, 1).all()
    # Rao-Blackwellized: not multiples of 1 / R (exact zeros: still in a spell that cannot
    # end within the horizon, or dissolved)
    pos = p[p > 0] * CFG.truth_replicates
    assert (np.abs(pos - np.round(pos)) > 1e-3).mean() > 0.95
    assert p.nunique() > 1000
    assert months.loc[months["onset"], "in_hardship"].all()
    assert households["applies_if_in_need"].between(0, 1).all()


def test_truth_probability_is_informative_and_calibrated(city):
    _, _, months, _ = city
    future = _onset_within(months, 6)
    df = months.set_index(["household_id", "month"]).join(future, how="inner")
    df = df[~df["in_hardship"]]
    auc = roc_auc_score(df["future_onset"], df["onset_prob_6m"])
    assert auc > 0.75, auc
    # calibrated on average (it is the model that generated the outcomes)
    assert abs(df["onset_prob_6m"].mean() - df["future_onset"].mean()) < 0.35 * df[
        "future_onset"].mean()


def test_assistance_is_a_lagged_partial_view_of_hardship(city):
    out, manifest, months, _ = city
    assist = read_table(out, "assistance", manifest).drop_duplicates("record_id")
    start = pd.Timestamp(CFG.start)
    new = assist[assist["start_date"] >= start]
    assert len(new) > 10
    state = months.set_index(["household_id", "month"])
    prev = new["start_date"] - pd.offsets.MonthBegin(1)
    keys = list(zip(new["household_id"], prev, strict=True))
    known = [k for k in keys if k in state.index]
    assert len(known) > 0.9 * len(keys)
    # an entry starts only after the household fell into hardship (at least a month before)
    assert state.loc[known, "in_hardship"].all()
    onset_hh = set(months.loc[months["onset"], "household_id"])
    entered = set(new["household_id"])
    never_observed = onset_hh - entered - set(assist["household_id"])
    assert len(never_observed) > 0.2 * len(onset_hh)  # those who never ask exist
    assert (new["knowledge_date"] > new["start_date"]).all()
    # still in hardship at the end and never on any roll
    last = months[months["month"] == months["month"].max()]
    hidden = last[last["in_hardship"] & ~last["household_id"].isin(assist["household_id"])]
    assert len(hidden) > 0


def test_those_most_in_need_ask_least(city):
    _, _, _, households = city
    prop = households.groupby("household_type")["applies_if_in_need"].mean()
    assert prop["elderly_alone"] < prop["couple_children"]
    by_area = households.groupby("urban_rural")["applies_if_in_need"].mean()
    assert by_area["rural"] < by_area["urban"]
