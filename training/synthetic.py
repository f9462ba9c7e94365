"""Synthetic household-month tables with a known signal, for tests, notebooks and benchmarks.

Not the city simulator: a plain generator of the *shape* of the feature table (one row per
household and as-of month, audit attributes, indicator flags, numeric features) whose label
depends on a few features through a logistic model, so a good model is measurably better than
the baselines. `truth_prob` is the generating probability (an oracle for evaluation tests).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AUDIT = ["district", "urban_rural", "head_age_band", "head_sex", "has_disabled_member",
         "has_children"]


def household_table(
    n_households: int = 2000,
    n_months: int = 24,
    n_features: int = 20,
    seed: int = 0,
    base_logit: float = -3.5,
    start: str = "2023-01-01",
) -> pd.DataFrame:
    """Columns: household_key, as_of_date, audit attributes, ind_* flags, f_* features,
    label (0/1) and truth_prob. Vectorised: one draw per array, no per-row loop."""
    rng = np.random.default_rng(seed)
    n = n_households * n_months
    hh = np.repeat(np.arange(n_households), n_months)
    month = np.tile(np.arange(n_months), n_households)
    # a persistent household effect plus monthly noise makes features autocorrelated
    latent = rng.normal(size=(n_households, 4))[hh] * 0.8 + rng.normal(size=(n, 4)) * 0.6
    n_noise = max(n_features - 8, 0)
    cols: dict[str, np.ndarray] = {
        "f_income_pc": np.exp(7.5 - 0.5 * latent[:, 0] + rng.normal(0, 0.2, n)),
        "f_household_size": rng.integers(1, 7, n_households)[hh].astype(float),
        "f_dependency_ratio": np.clip(0.4 + 0.2 * latent[:, 1], 0, 1),
        "f_assets_score": 2.0 - latent[:, 0] * 0.7 + rng.normal(0, 0.5, n),
        "f_medical_oop_3m": np.exp(4 + 0.9 * latent[:, 2] + rng.normal(0, 0.5, n)),
        "f_unemployed_members": rng.poisson(np.exp(-1.5 + 0.6 * latent[:, 3])).astype(float),
        "f_school_absence_3m": rng.poisson(np.exp(0.5 + 0.4 * latent[:, 1])).astype(float),
        "f_months_since_left_assistance": np.where(rng.random(n) < 0.1,
                                                   rng.integers(0, 24, n), np.nan),
    }
    for j in range(n_noise):
        cols[f"f_noise_{j:02d}"] = rng.normal(size=n)
    interaction = (latent[:, 2] > 1) & (latent[:, 3] > 0.5)
    logit = (base_logit + 0.9 * latent[:, 0] + 0.5 * latent[:, 2] + 0.4 * latent[:, 3]
             + 1.2 * interaction + 0.6 * np.isfinite(cols["f_months_since_left_assistance"]))
    truth = 1 / (1 + np.exp(-logit))
    label = (rng.random(n) < truth).astype(np.int8)
    district = np.array(["east", "west", "north", "south"])[rng.integers(0, 4, n_households)][hh]
    frame = pd.DataFrame({
        "household_key": np.char.add("h", np.char.zfill(hh.astype(str), 7)),
        "as_of_date": pd.PeriodIndex.from_ordinals(
            pd.Period(start, "M").ordinal + month, freq="M").to_timestamp(),
        "district": district,
        "urban_rural": np.where(rng.random(n_households) < 0.6, "urban", "rural")[hh],
        "head_age_band": np.array(["<40", "40-64", "65+"])[rng.integers(0, 3, n_households)][hh],
        "head_sex": np.where(rng.random(n_households) < 0.5, "F", "M")[hh],
        "has_disabled_member": (rng.random(n_households) < 0.1)[hh],
        "has_children": (rng.random(n_households) < 0.4)[hh],
        **cols,
    })
    frame["ind_serious_illness"] = (latent[:, 2] > 1.2).astype(np.int8)
    frame["ind_unemployment"] = (cols["f_unemployed_members"] > 0).astype(np.int8)
    frame["ind_left_assistance"] = np.isfinite(cols["f_months_since_left_assistance"]).astype(
        np.int8)
    frame["label"] = label
    frame["truth_prob"] = truth
    return frame
