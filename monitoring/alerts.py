"""Alerts of a monitoring run, and which households are not alerted again.

Three kinds (policy [outreach]):
- `tier_up`: the household entered a higher tier than at the previous run (a household new to
  monitoring counts as coming from green);
- `score_rise`: the calibrated score rose by more than `score_rise_alert` since the previous run;
- `indicator:<id>`: an early-warning indicator triggered since the previous run.
Households on assistance at the as-of date, or visited within `cooldown_months`, are still scored
but raise no alert (they are already known to a caseworker).
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from safetynet.model import tier_rank

# Outcomes that mean a caseworker actually saw the household (could_not_reach does not count).
VISITED_OUTCOMES = ("hardship_confirmed", "not_in_hardship", "moved")
ALERT_COLUMNS = ["household_key", "kind", "detail_json"]


def suppressed_households(
    households: pd.Series,
    as_of: date,
    assistance: pd.DataFrame | None,
    outcomes: pd.DataFrame | None,
    cooldown_months: int,
) -> pd.Series:
    """Reason ('on_assistance' / 'cooldown') per household key, None when alerts may be raised.

    `assistance`: household_key, programme, start_date, end_date, knowledge_date (offline store);
    only entries known by the as-of date count. `outcomes`: household_key, visit_date, outcome.
    """
    ts = pd.Timestamp(as_of)
    reason = pd.Series(None, index=pd.Index(households, name="household_key"), dtype=object)
    if outcomes is not None and len(outcomes):
        since = ts - pd.DateOffset(months=cooldown_months)
        vd = pd.to_datetime(outcomes["visit_date"])
        seen = outcomes.loc[
            (vd > since) & (vd <= ts) & outcomes["outcome"].isin(VISITED_OUTCOMES), "household_key"
        ]
        reason[reason.index.isin(seen)] = "cooldown"
    if assistance is not None and len(assistance):
        start = pd.to_datetime(assistance["start_date"])
        end = pd.to_datetime(assistance["end_date"])
        known = (
            pd.to_datetime(assistance["knowledge_date"])
            if "knowledge_date" in assistance
            else start
        )
        active = (start <= ts) & (end.isna() | (end > ts)) & (known <= ts)  # as training/labels
        reason[reason.index.isin(assistance.loc[active, "household_key"])] = "on_assistance"
    return reason


def compute_alerts(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    indicators: pd.DataFrame | None,
    suppressed: pd.Series,
    as_of: date,
    prev_as_of: date | None,
    score_rise: float,
) -> pd.DataFrame:
    """Alerts of this run: household_key, kind, detail_json (one row per household and kind).

    `current`/`previous`: household_key, score, tier. `suppressed`: from `suppressed_households`.
    """
    cur = current[["household_key", "score", "tier"]]
    if previous is not None and len(previous):
        prev = previous[["household_key", "score", "tier"]].rename(
            columns={"score": "prev_score", "tier": "prev_tier"}
        )
        cur = cur.merge(prev, on="household_key", how="left")
    else:
        cur = cur.assign(prev_score=np.nan, prev_tier=None)
    allowed = ~cur["household_key"].map(suppressed).notna().to_numpy()

    now_rank = tier_rank(cur["tier"])
    was_rank = np.where(cur["prev_tier"].isna(), 0, tier_rank(cur["prev_tier"].fillna("green")))
    tier_up = allowed & (now_rank > was_rank) & (now_rank > 0)
    rise = allowed & ((cur["score"] - cur["prev_score"]) > score_rise).to_numpy()

    frames = []
    for kind, mask in (("tier_up", tier_up), ("score_rise", rise)):
        sel = cur.loc[mask]
        frames.append(
            pd.DataFrame(
                {
                    "household_key": sel["household_key"].to_numpy(),
                    "kind": kind,
                    "detail_json": _details(sel),
                }
            )
        )
    if indicators is not None and len(indicators):
        frames.append(
            _indicator_alerts(indicators, cur.loc[allowed, "household_key"], as_of, prev_as_of)
        )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ALERT_COLUMNS)
    return out.drop_duplicates(["household_key", "kind"]).reset_index(drop=True)


def _details(sel: pd.DataFrame) -> list[str]:
    """Small JSON of the scores behind an alert (alerts are few: a loop over them is cheap)."""
    prev_score = sel["prev_score"].astype(float).round(4)
    return [
        json.dumps(
            {"tier": t, "prev_tier": pt, "score": s, "prev_score": None if np.isnan(ps) else ps}
        )
        for t, pt, s, ps in zip(
            sel["tier"],
            sel["prev_tier"].where(sel["prev_tier"].notna(), None),
            sel["score"].round(4),
            prev_score,
            strict=True,
        )
    ]


def _indicator_alerts(
    indicators: pd.DataFrame, allowed_keys: pd.Series, as_of: date, prev_as_of: date | None
) -> pd.DataFrame:
    """Indicators that triggered after the previous run (all of them at the first run)."""
    ind = indicators[indicators["household_key"].isin(allowed_keys)]
    trig = pd.to_datetime(ind["triggered_on"])
    keep = trig <= pd.Timestamp(as_of)
    if prev_as_of is not None:
        keep &= trig > pd.Timestamp(prev_as_of)
    ind = ind.loc[keep]
    evidence = ind["evidence"] if "evidence" in ind else pd.Series("", index=ind.index)
    return pd.DataFrame(
        {
            "household_key": ind["household_key"].to_numpy(),
            "kind": ("indicator:" + ind["indicator_id"].astype(str)).to_numpy(),
            "detail_json": [
                json.dumps({"triggered_on": str(pd.Timestamp(t).date()), "evidence": str(e)})
                for t, e in zip(ind["triggered_on"], evidence, strict=True)
            ],
        }
    )
