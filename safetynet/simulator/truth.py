"""The ground truth: each household-month's hardship state and P(onset within the horizon).

Estimator (Rao-Blackwellized Monte Carlo): from the latent state at the end of month t, the
future is replicated R times with `dynamics.step(record=False)`. Latent drivers (jobs,
illness, deaths, budget) do not depend on whether an onset happens, and recovery from a
current spell is a deterministic function of the drivers, so given one simulated driver path
the probability of no onset is exactly prod_k (1 - h_{t+k}) with h the effective onset hazard
(zero while still in the current spell). Then

    onset_prob_6m(t) = 1 - mean_r prod_{k=1..6} (1 - h_{t+k}^{(r)}),

continuous rather than a multiple of 1/R, with variance only from the driver paths.
Cost: R x horizon extra steps per evaluated month (memory R x chunk households).

The truth is for evaluation only: features and training must never read `DIR/truth/`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from safetynet.simulator.config import SimulationConfig
from safetynet.simulator.dynamics import Clock, State, step

HOUSEHOLD_MONTHS = "truth/household_months.parquet"
HOUSEHOLDS = "truth/households.parquet"

MONTH_SCHEMA = pa.schema([
    ("household_id", pa.string()), ("month", pa.date32()), ("in_hardship", pa.bool_()),
    ("onset", pa.bool_()), ("onset_prob_6m", pa.float32()), ("onset_hazard", pa.float32()),
    ("income_ratio", pa.float32()), ("own_income_pc", pa.float32()),
    ("rigid_expenditure_pc", pa.float32()), ("net_income_pc", pa.float32()),
    ("poverty_line", pa.float32()), ("buffer", pa.float32()), ("buffer_months", pa.float32()),
    ("shortfall_months", pa.int16()), ("on_assistance", pa.bool_()),
    ("assistance_pending", pa.bool_()), ("members", pa.int16()),
])


def onset_probability(st: State, g: int, cfg: SimulationConfig, clock: Clock,
                      hh_start: np.ndarray) -> np.ndarray:
    """P(hardship onset in months g+1..g+horizon | state at the end of month g), per household."""
    H = st.n_households
    R = cfg.truth_replicates
    rng = np.random.default_rng([cfg.seed, 7919, g])  # independent of the world's own stream
    out = np.empty(H, np.float32)
    for h0 in range(0, H, cfg.truth_chunk_households):
        h1 = min(H, h0 + cfg.truth_chunk_households)
        rep = st.replicate(h0, h1, hh_start, R)
        survival = np.ones(rep.n_households, np.float64)
        for k in range(1, cfg.truth_horizon + 1):
            hazard, _ = step(rep, g + k, cfg, clock, rng, record=False)
            survival *= 1.0 - hazard
        out[h0:h1] = 1.0 - survival.reshape(R, h1 - h0).mean(axis=0)
    return out


def month_rows(hh_ids: pa.Array, day: int, st: State, ev: dict,
               prob: np.ndarray | None) -> pa.Table:
    h = st.h
    size = np.maximum(h["size"], 1)
    line = h["line"]
    n = len(size)
    cols = {
        "household_id": hh_ids,
        "month": pa.array(np.full(n, day, np.int32), pa.int32()).cast(pa.date32()),
        "in_hardship": h["in_hard"], "onset": ev["onset"],
        "onset_prob_6m": prob if prob is not None else np.full(n, np.nan, np.float32),
        "onset_hazard": ev["hazard"], "income_ratio": h["ema"],
        "own_income_pc": ev["own"] / size, "rigid_expenditure_pc": ev["rigid"] / size,
        "net_income_pc": (ev["own"] - ev["rigid"]) / size, "poverty_line": line,
        "buffer": h["buffer"], "buffer_months": h["buffer"] / (line * size),
        "shortfall_months": h["shortfall"], "on_assistance": h["asst_prog"] >= 0,
        "assistance_pending": h["pending"] >= 0,
        "members": h["size"].astype(np.int16),
    }
    arrays = [c if isinstance(c, pa.Array) else pa.array(np.asarray(c).astype(
        f.type.to_pandas_dtype())) for c, f in zip(cols.values(), MONTH_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=MONTH_SCHEMA)
