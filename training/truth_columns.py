"""Names of the columns `training/evaluation.py` attaches on simulated data (`--truth`).

Defined once here so that `pipeline` (which reserves them: never model features) and `need`
(which may audit by the truth's household type) share them without importing each other;
`pipeline.TRUTH_COLUMNS` re-exports them and `evaluation` takes them from there.
"""

from __future__ import annotations

TRUTH_COLUMN = "_truth_prob"  # true onset probability in the horizon (the "oracle")
TRUTH_ONSET_COLUMN = "_truth_onset"  # the realised true onset in the horizon (0/1, NA)
TRUTH_HARDSHIP_COLUMN = "_truth_in_hardship"  # in a true hardship spell at the as-of date
TRUTH_NEED_COLUMN = "_truth_need"  # unmet need (0/1, NA): hardship now or onset, not assisted
TRUTH_ELDERLY_ALONE_COLUMN = "_truth_elderly_living_alone"  # the simulator's household type
TRUTH_COLUMNS: tuple[str, ...] = (
    TRUTH_COLUMN, TRUTH_ONSET_COLUMN, TRUTH_HARDSHIP_COLUMN, TRUTH_NEED_COLUMN,
    TRUTH_ELDERLY_ALONE_COLUMN,
)
