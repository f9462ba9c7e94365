"""The design of the visit sample: how visited households stand for the households not visited.

Listed households are visited with probability 1; the random audit slice draws from the unlisted
pool with a known probability (`worklist_items.selection_prob`). Monitoring's estimates and
training's need model weight visits the same way, so the rule lives here once
(docs/monitoring-estimates.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def design_weights(
    selection_prob: pd.Series, reached: pd.Series, cells: Sequence[pd.Series]
) -> pd.Series:
    """Per visit: 1 / selection_prob, times (selected / reached) weight within its cell (a
    nonresponse adjustment: e.g. month x district x listed/audit); NaN where nobody was reached.

    `selection_prob` in (0, 1], `reached` bool, `cells` the grouping columns, all on one index;
    returns a float Series on that index."""
    base = 1.0 / selection_prob.astype(np.float64)
    selected_w = base.groupby(list(cells)).transform("sum")
    reached_w = base.where(reached, 0.0).groupby(list(cells)).transform("sum")
    return (base * selected_w / reached_w).where(reached)
