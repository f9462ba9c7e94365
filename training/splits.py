"""Validation splits: timechop-style temporal folds, or grouped folds when there is no time.

Time is handled as integer periods: dates become months (year*12 + month - 1), integer time
columns are used as they are. The horizon H is in the same unit.

Temporal fold (as-of dates t, label window (t, t+H]):

    fit  : t <= valid_start - H - 1        (labels end strictly before validation starts)
    valid: valid_start .. test_start - H - 1   (early stopping and calibration)
    test : test_start .. test_start + test_periods - 1

so `max(train label window end) < min(test as-of)` holds for fit and valid alike. The last fold's
test is the latest fully labelled period; earlier folds step back by `step` periods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """Row indices of one fold. `info` describes it (periods or group counts) for logging."""

    fit: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    info: dict[str, object] = field(default_factory=dict)


def to_periods(values: pd.Series) -> np.ndarray:
    """Integer periods: months for dates, the value itself for integer columns."""
    if pd.api.types.is_datetime64_any_dtype(values) or values.dtype == object:
        dt = pd.to_datetime(values)
        return (dt.dt.year * 12 + dt.dt.month - 1).to_numpy(dtype=np.int64)
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(dtype=np.int64)
    raise ValueError(
        f"time column {values.name!r} has dtype {values.dtype}: use dates or integer periods"
    )


def period_label(period: int, is_date: bool) -> str:
    return f"{period // 12:04d}-{period % 12 + 1:02d}" if is_date else str(period)


def temporal_folds(
    periods: np.ndarray,
    horizon: int,
    n_folds: int = 3,
    test_periods: int = 1,
    valid_periods: int = 1,
    step: int | None = None,
    last_labelled: int | None = None,
    min_fit_periods: int = 1,
) -> list[Fold]:
    """Rolling temporal folds, oldest first; the last is the final test.

    `last_labelled` is the latest as-of period whose label window has closed (default: the
    latest period present, i.e. the caller already dropped partially labelled rows).
    """
    periods = np.asarray(periods, dtype=np.int64)
    if horizon < 0:
        raise ValueError("horizon must be >= 0")
    present = np.unique(periods)
    last = int(present.max()) if last_labelled is None else int(last_labelled)
    step = step or test_periods
    folds: list[Fold] = []
    for i in range(n_folds):
        test_end = last - i * step
        test_start = test_end - test_periods + 1
        valid_end = test_start - horizon - 1
        valid_start = valid_end - valid_periods + 1
        fit_end = valid_start - horizon - 1
        fit_periods = present[present <= fit_end]
        if len(fit_periods) < min_fit_periods:
            break
        fold = Fold(
            fit=np.flatnonzero(periods <= fit_end),
            valid=np.flatnonzero((periods >= valid_start) & (periods <= valid_end)),
            test=np.flatnonzero((periods >= test_start) & (periods <= test_end)),
            info={
                "fit_end": fit_end,
                "valid_start": valid_start,
                "valid_end": valid_end,
                "test_start": test_start,
                "test_end": test_end,
                "horizon": horizon,
            },
        )
        if len(fold.valid) == 0 or len(fold.test) == 0:
            break
        folds.append(fold)
    if not folds:
        span = f"{present.min()}..{present.max()}" if len(present) else "none"
        raise ValueError(
            f"not enough history for a temporal split: periods {span}, horizon {horizon}, "
            f"test {test_periods}, valid {valid_periods} (need at least "
            f"{2 * horizon + test_periods + valid_periods + min_fit_periods + 1} periods)"
        )
    return folds[::-1]


def grouped_folds(
    entities: np.ndarray, n_folds: int = 3, valid_fraction: float = 0.2, seed: int = 0
) -> list[Fold]:
    """GroupKFold by entity: no entity in two of fit/valid/test. The last fold is the final test."""
    from sklearn.model_selection import GroupKFold

    entities = np.asarray(entities)
    uniq, codes = np.unique(entities.astype(str), return_inverse=True)
    if len(uniq) < n_folds * 2:
        raise ValueError(f"{len(uniq)} entities are too few for {n_folds} grouped folds")
    rng = np.random.default_rng(seed)
    # a random but fixed number per entity picks its validation membership
    entity_draw = rng.random(len(uniq))
    folds = []
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for i, (train_idx, test_idx) in enumerate(splitter.split(codes, groups=codes)):
        is_valid = entity_draw[codes[train_idx]] < valid_fraction
        folds.append(
            Fold(
                fit=train_idx[~is_valid],
                valid=train_idx[is_valid],
                test=test_idx,
                info={"fold": i, "test_entities": len(np.unique(codes[test_idx]))},
            )
        )
    return folds


def assert_no_leakage(periods: np.ndarray, fold: Fold, horizon: int) -> None:
    """Raise if a training label window reaches into the test period (or validation)."""
    periods = np.asarray(periods)
    train_end = periods[np.concatenate([fold.fit, fold.valid])].max() + horizon
    if train_end >= periods[fold.test].min():
        raise AssertionError("training label window overlaps the test period")
    if len(fold.valid) and periods[fold.fit].max() + horizon >= periods[fold.valid].min():
        raise AssertionError("fit label window overlaps the validation period")
