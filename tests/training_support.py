"""Small generated tables for the training tests.

`xor_table`: the label depends on sign(x1) != sign(x2) (an interaction no single feature and no
linear model can rank), plus x3 linearly; x4..x6 are noise. Integer months as the time column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from safetynet.config import DEFAULT_POLICY_FILE, load_policy
from safetynet.policy import FairnessPolicy
from safetynet.training.model import SearchConfig
from safetynet.training.pipeline import RunConfig, TableSpec


def xor_table(n_entities: int = 300, n_periods: int = 16, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_entities * n_periods
    ent = np.repeat(np.arange(n_entities), n_periods)
    per = np.tile(np.arange(n_periods), n_entities)
    base = rng.normal(size=(n_entities, 3))[ent] * 0.7 + rng.normal(size=(n, 3)) * 0.7
    x1, x2, x3 = base.T
    logit = -3.0 + 3.0 * ((x1 > 0) != (x2 > 0)) + 0.6 * x3
    p = 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame({
        "entity": np.char.add("e", ent.astype(str)),
        "month": per.astype(np.int64),
        "x1": x1, "x2": x2, "x3": x3,
        "x4": rng.normal(size=n), "x5": rng.normal(size=n), "x6": rng.normal(size=n),
        "region": np.array(["a", "b", "c"])[rng.integers(0, 3, n_entities)][ent],
        "sex": np.where(rng.random(n_entities) < 0.5, "F", "M")[ent],
    })
    frame["y"] = (rng.random(n) < p).astype(np.int8)
    frame["p_true"] = p
    return frame


def spec(**kw) -> TableSpec:
    base = dict(label="y", entity="entity", time="month", audit=["sex"], group="region",
                exclude=["p_true"])
    return TableSpec(**{**base, **kw})


POLICY = load_policy(DEFAULT_POLICY_FILE).replace(
    promotion={"metric": "precision_at_5pct", "margin": 0.0, "fairness": "absolute"},
)


def fairness(**values) -> FairnessPolicy:
    """The [fairness] section with some values replaced (validated)."""
    return POLICY.replace(fairness=values).fairness


def config(**kw) -> RunConfig:
    search = SearchConfig(n_trials=2, seed=0, max_rounds=80, early_stopping_rounds=15,
                          num_threads=1, search_max_rows=None)
    base = dict(horizon=2, n_folds=2, test_periods=1, valid_periods=2, k_per_group=20,
                fractions=(0.01, 0.05, 0.10), capacity_fraction=0.05, calibration="auto",
                search=search, compare_unconstrained=False, refit=True, shap_rows=200,
                fairness=fairness(disparity_low=0.8, disparity_high=1.25,
                                  min_group_positives=10_000))
    return RunConfig(**{**base, **kw})
