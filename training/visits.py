"""Visit rows an office has, as training and the promotion gate read them.

A *visit table* is one row per worklist item of the monitoring runs that got visits (the
feedback store's outcomes joined to their worklist items, `safetynet.db.feedback.
load_visited_items`), with the household's model features at the item's as-of date from the
same feature table the entry model trains on:

- household_key, as_of_date (datetime, the worklist month), district, audit (bool),
  selection_prob (1 for listed items, n_audit / unlisted pool for audit items);
- y: 1 hardship confirmed, 0 not in hardship, NaN otherwise (could not reach, moved, or no
  outcome: nonresponse within its cell, kept for the design weights);
- weight: the design weight (`design_weights`), NaN where y is NaN;
- the feature table's columns (model features, audit attributes).

Visit labels describe the state at the visit, so they need no label horizon to mature
(docs/need-learning.md). The estimates here (`visit_need_figures`) are the gate's evidence
when no truth exists (docs/training.md, "The promotion gate").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from safetynet import visit_design
from safetynet.config import Settings
from safetynet.training.need import need_audit_groups

log = logging.getLogger(__name__)

OUTCOME_LABELS = {"hardship_confirmed": 1.0, "not_in_hardship": 0.0}
KEYS = ["household_key", "as_of_date"]


def read_visited_items(settings: Settings) -> pd.DataFrame:
    """The feedback store's visited worklist items (`load_visited_items`); empty without."""
    from safetynet.db.engine import make_engine
    from safetynet.db.feedback import load_visited_items
    from safetynet.db.migrate import migrate_engine

    engine = make_engine(settings.db_url)
    migrate_engine(engine)
    return load_visited_items(engine)


def design_weights(items: pd.DataFrame, stratum: str = "district") -> pd.Series:
    """Per item: the visit design weight (`safetynet.visit_design.design_weights`) in its
    (as_of_date, stratum, listed/audit) cell; NaN where y is NaN (nobody reached)."""
    cells = [items["as_of_date"], items[stratum], ~items["audit"].astype(bool)]
    return visit_design.design_weights(items["selection_prob"], items["y"].notna(), cells)


def visit_table(items: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Visited items (`load_visited_items` columns) -> the visit table (module docstring).

    Items whose household has no feature row at the item's as-of date keep y but lose their
    features (NaN): LightGBM treats them as missing. Raises ValueError when a column is
    missing or a selection probability is outside (0, 1]."""
    need = {"household_key", "as_of_date", "district", "audit", "selection_prob", "outcome"}
    missing = sorted(need - set(items.columns))
    if missing:
        raise ValueError(f"visited items lack columns {missing}")
    p = items["selection_prob"].to_numpy(dtype=np.float64)
    if not ((p > 0) & (p <= 1)).all():
        raise ValueError("selection_prob must be in (0, 1]")
    v = items[["household_key", "as_of_date", "district", "audit", "selection_prob"]].copy()
    v["as_of_date"] = pd.to_datetime(v["as_of_date"])
    v["audit"] = v["audit"].astype(bool)
    v["y"] = items["outcome"].map(OUTCOME_LABELS).astype(np.float64).to_numpy()
    v["weight"] = design_weights(v)
    feats = features.assign(as_of_date=pd.to_datetime(features["as_of_date"]))
    feats = feats.drop(columns=["district"], errors="ignore").drop_duplicates(KEYS)
    out = v.merge(feats, on=KEYS, how="left")
    return out.reset_index(drop=True)


def load_visits(settings: Settings, features: pd.DataFrame) -> pd.DataFrame:
    """The visit table from the feedback store and `features` (empty when nothing visited)."""
    items = read_visited_items(settings)
    if items.empty:
        return pd.DataFrame(columns=["household_key", "as_of_date", "district", "audit",
                                     "selection_prob", "y", "weight"])
    table = visit_table(items, features)
    log.info("visit table: %d items of %d months, %d reached (%d audit)", len(table),
             table["as_of_date"].nunique(), int(table["y"].notna().sum()),
             int((table["y"].notna() & table["audit"]).sum()))
    return table


def _weighted_top(score: np.ndarray, weight: np.ndarray, fraction: float) -> np.ndarray:
    """(n,) bool: rows in the top `fraction` of the weighted score distribution (the design
    estimate of the population's top `fraction`); ties at the cut go in."""
    order = np.argsort(-score, kind="stable")
    cum = np.cumsum(weight[order]) / weight.sum()
    k = int(np.searchsorted(cum, fraction, side="left")) + 1
    cut = score[order][min(k, len(score)) - 1]
    return score >= cut


def visit_need_figures(
    visits: pd.DataFrame,
    score: np.ndarray,
    fraction: float,
    attributes: Sequence[str],
    min_needy: int,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Design-based need precision and group need recall of a ranking at capacity, from
    reached visits with design weights (`visit_table`), one ranking per as-of month.

    score: (n,) the ranking on `visits`' rows (higher = listed first). Per month the model's
    list is the top `fraction` of the weighted visit sample (the pool it stands for); pooled
    over months, precision = sum w*y over listed / sum w over listed, and a group's recall =
    sum w*y over its listed rows / sum w*y over its rows. Returns ({"precision", "recall",
    "visits", "audit_visits", "months"}, per-group table: attribute, group, needy (reached
    visits in need, unweighted), recall). Groups with fewer than `min_needy` needy visits get
    recall NaN."""
    score = np.asarray(score, dtype=np.float64)
    if len(score) != len(visits):
        raise ValueError(f"score has {len(score)} rows, the visits {len(visits)}")
    reached = visits["y"].notna().to_numpy() & visits["weight"].notna().to_numpy()
    v = visits.loc[reached].reset_index(drop=True)
    s = score[reached]
    listed = np.zeros(len(v), dtype=bool)
    for _, idx in v.groupby("as_of_date").groups.items():
        rows = np.asarray(idx)
        listed[rows] = _weighted_top(s[rows], v["weight"].to_numpy()[rows], fraction)
    w, y = v["weight"].to_numpy(dtype=np.float64), v["y"].to_numpy(dtype=np.float64)
    wl = w * listed
    figures = {
        "precision": float(wl @ y / wl.sum()) if wl.sum() > 0 else float("nan"),
        "recall": float(wl @ y / (w @ y)) if w @ y > 0 else float("nan"),
        "visits": float(len(v)),
        "audit_visits": float(v["audit"].sum()),
        "months": float(v["as_of_date"].nunique()),
    }
    groups = need_audit_groups(v, attributes)
    rows = []
    for attr in groups.columns:
        labels = groups[attr].astype("string").fillna("(missing)")
        for group, idx in labels.groupby(labels).groups.items():
            i = np.asarray(idx)
            needy = int(y[i].sum())
            denom = float(w[i] @ y[i])
            recall = (float(wl[i] @ y[i]) / denom
                      if needy >= min_needy and denom > 0 else float("nan"))
            rows.append({"attribute": attr, "group": str(group), "needy": needy,
                         "recall": recall})
    return figures, pd.DataFrame(rows, columns=["attribute", "group", "needy", "recall"])


def recall_ratios(challenger: pd.DataFrame, champion: pd.DataFrame) -> pd.DataFrame:
    """Per (attribute, group): challenger need recall / champion need recall (NaN where
    either is NaN or the champion's is 0). Input: the group tables of `visit_need_figures`
    or `training.need.need_recall_by_group` (columns attribute, group, recall)."""
    merged = challenger[["attribute", "group", "recall"]].merge(
        champion[["attribute", "group", "recall"]], on=["attribute", "group"],
        suffixes=("_challenger", "_champion"))
    champ = merged["recall_champion"].where(merged["recall_champion"] > 0)
    merged["ratio"] = merged["recall_challenger"] / champ
    return merged
