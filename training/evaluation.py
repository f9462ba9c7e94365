"""Evaluation against the simulator's ground truth (simulated data only).

This module and the simulator are the only code allowed to read `DIR/truth/`. It attaches the
true onset probability to the feature rows as `_truth_prob`, which the pipeline uses only to
compute oracle metrics (never as a feature):

- test_oracle_precision_at_K: precision@K (observed labels) when ranking by the truth
  probability; test_efficiency_at_K = model precision@K / oracle precision@K;
- test_truth_precision_at_K: mean true probability among the model's top K, and
  test_oracle_truth_precision_at_K / test_truth_efficiency_at_K the same for the oracle's top K
  (free of label noise and of partial observation).

`attach_truth_outcomes` adds the true onset label and hardship state, for benchmarks that
separate label noise from what the features can see (benchmarks/bench_oracle_gap.py).
`attach_truth_need` adds unmet need and the household type, from which the pipeline's truth
step computes the need metrics (`test_need_*`, training/need.py; docs/training.md). Column
names: `pipeline.TRUTH_COLUMNS`, all reserved (never features).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from safetynet.pseudonym import pseudonymize
from safetynet.training.pipeline import (
    TRUTH_COLUMN,
    TRUTH_ELDERLY_ALONE_COLUMN,
    TRUTH_HARDSHIP_COLUMN,
    TRUTH_NEED_COLUMN,
    TRUTH_ONSET_COLUMN,
)

TRUTH_FILE = "household_months.parquet"
PROB_CANDIDATES = ("onset_prob_6m", "onset_prob", "truth_prob")
TIME_CANDIDATES = ("month", "as_of_date", "period", "date")


def _truth_path(truth_dir: Path) -> Path:
    path = Path(truth_dir) / TRUTH_FILE
    if not path.exists() and (Path(truth_dir) / "truth" / TRUTH_FILE).exists():
        path = Path(truth_dir) / "truth" / TRUTH_FILE
    if not path.exists():
        raise FileNotFoundError(f"no truth file at {path}")
    return path


def read_truth(truth_dir: Path, secret: bytes) -> pd.DataFrame:
    """(household_key, month period, truth prob) from DIR/truth/household_months.parquet."""
    path = _truth_path(truth_dir)
    cols = [r[0] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]
    prob = next((c for c in PROB_CANDIDATES if c in cols), None)
    time = next((c for c in TIME_CANDIDATES if c in cols), None)
    if prob is None or time is None or "household_id" not in cols:
        raise ValueError(f"truth file {path} lacks household_id/{PROB_CANDIDATES}/"
                         f"{TIME_CANDIDATES}: has {cols}")
    truth = duckdb.sql(
        f"SELECT household_id, {time} AS t, {prob} AS p FROM read_parquet('{path}') "
        f"WHERE {prob} IS NOT NULL"
    ).df()
    truth["household_key"] = pseudonymize(secret, "household", truth["household_id"].astype(str))
    t = truth["t"]
    if pd.api.types.is_datetime64_any_dtype(t) or t.dtype == object:
        truth["period"] = pd.to_datetime(t.astype(str)).dt.to_period("M")
    else:
        raise ValueError(f"truth time column {time!r} has dtype {t.dtype}; expected a date/month")
    return truth[["household_key", "period", "p"]].rename(columns={"p": TRUTH_COLUMN})


def _windowed_truth(path: Path, secret: bytes, horizon: int, columns: str) -> pd.DataFrame:
    """Per household and month g: `columns` of g (SQL select list), `n_onset` and `n_months`
    over g+1..g+horizon, the pseudonymous `household_key` and `period` (month g)."""
    truth = duckdb.sql(
        f"""
        SELECT household_id, CAST(month AS DATE) AS t, {columns},
          sum(CAST(onset AS INTEGER)) OVER w AS n_onset, count(*) OVER w AS n_months
        FROM read_parquet('{path}')
        WINDOW w AS (PARTITION BY household_id ORDER BY month
                     ROWS BETWEEN 1 FOLLOWING AND {int(horizon)} FOLLOWING)
        """
    ).df()
    truth["household_key"] = pseudonymize(secret, "household", truth["household_id"].astype(str))
    truth["period"] = pd.to_datetime(truth["t"]).dt.to_period("M")
    return truth


def _merge_at_last_month(frame: pd.DataFrame, truth: pd.DataFrame, columns: list[str]
                         ) -> pd.DataFrame:
    """`frame` with truth `columns` of the last month completed by each row's as-of date (the
    truth of month g is the state at the END of g: 2024-01-31 and 2024-02-01 -> January)."""
    out = frame.copy()
    as_of = pd.to_datetime(out["as_of_date"])
    out["period"] = (as_of + pd.Timedelta(days=1)).dt.to_period("M") - 1
    keep = ["household_key", "period", *columns]
    return out.merge(truth[keep], on=["household_key", "period"], how="left").drop(
        columns="period")


def attach_truth(frame: pd.DataFrame, truth_dir: Path, secret: bytes) -> pd.DataFrame:
    """`frame` (household_key, as_of_date, ...) with `_truth_prob` of the last complete month.

    Rows without a truth value keep NaN; the caller decides whether to restrict to them.
    """
    truth = read_truth(truth_dir, secret)
    return _merge_at_last_month(frame, truth, [TRUTH_COLUMN])


def attach_truth_outcomes(
    frame: pd.DataFrame, truth_dir: Path, secret: bytes, horizon: int = 6
) -> pd.DataFrame:
    """`frame` with the simulator's true outcome, aligned like `attach_truth`:

    - `_truth_onset`: 1 if a true hardship spell starts in months g+1..g+horizon (g = the last
      month completed by the as-of date), the event `_truth_prob` is the probability of; NA
      when the window runs past the simulated months;
    - `_truth_in_hardship`: the household is in a true hardship spell at the end of g (such a
      household cannot have an onset until it recovers, yet may still enter assistance).

    Benchmarks only (never features, never training labels of a served model).
    """
    truth = _windowed_truth(_truth_path(truth_dir), secret, horizon, "in_hardship AS h")
    onset = (truth["n_onset"] > 0).astype("Int8")
    truth[TRUTH_ONSET_COLUMN] = onset.where(truth["n_months"] == horizon, pd.NA)
    truth[TRUTH_HARDSHIP_COLUMN] = truth["h"].astype(bool)
    return _merge_at_last_month(frame, truth, [TRUTH_ONSET_COLUMN, TRUTH_HARDSHIP_COLUMN])


HOUSEHOLDS_FILE = "households.parquet"


def attach_truth_need(
    frame: pd.DataFrame, truth_dir: Path, secret: bytes, horizon: int = 6
) -> pd.DataFrame:
    """`frame` (household_key, as_of_date, ...) with the simulator's unmet need, aligned like
    `attach_truth` (g = the last month completed by the as-of date):

    - `_truth_need` (Int8): 1 if the household is in a true hardship spell at the end of g or
      has an onset in g+1..g+horizon, AND is not on any assistance roll at the end of g (the
      truth's `on_assistance`, the simulator's own assistance state; a household with an
      approved application that has not started yet counts as not assisted); 0 otherwise;
      NA when the window runs past the simulated months or the household has no truth row;
    - `_truth_elderly_living_alone` (Int8), when the truth's households file has
      `household_type`: 1 for the simulator's `elderly_alone` type (fixed at the start of the
      simulation). Evaluation only, under a reserved name so it can never become a model
      feature; the feature store's own `elderly_living_alone` (registry-derived, as of the
      date) is the audit attribute where the frame carries it.

    Benchmarks and truth metrics only (never features, never training labels of a served
    model). Reproduces the issue-12 count: seed-42 demo city, g = 2025-06 -> 1,380 in need.
    """
    path = _truth_path(truth_dir)
    truth = _windowed_truth(path, secret, horizon, "in_hardship AS h, on_assistance AS a")
    need = ((truth["h"].astype(bool) | (truth["n_onset"] > 0)) & ~truth["a"].astype(bool))
    truth[TRUTH_NEED_COLUMN] = need.astype("Int8").where(truth["n_months"] == horizon, pd.NA)
    out = _merge_at_last_month(frame, truth, [TRUTH_NEED_COLUMN])
    households = path.parent / HOUSEHOLDS_FILE
    if households.exists():
        types = pd.read_parquet(households)
        if "household_type" in types.columns:
            types["household_key"] = pseudonymize(secret, "household",
                                                  types["household_id"].astype(str))
            types[TRUTH_ELDERLY_ALONE_COLUMN] = (
                types["household_type"] == "elderly_alone").astype("Int8")
            out = out.merge(types[["household_key", TRUTH_ELDERLY_ALONE_COLUMN]],
                            on="household_key", how="left")
    return out
