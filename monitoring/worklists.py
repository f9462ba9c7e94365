"""Capacity-aware worklists per district: the list in priority order, and a random audit slice.

Each district has `capacity` visits a month ([outreach] visits_per_caseworker_month x
caseworkers_per_district). `audit_visits_per_district` of them go to the audit slice; the rest
are filled with the district's households in priority order (tier, then alerted, then score),
down into the green tier when the tiered households do not fill it: a visit left unused finds
nobody. The tier stays an urgency label on each item.

Only visited households get outcomes, so outcomes of listed households say nothing about the
households the list missed. The audit slice is a uniform random sample of the district's
households *below the list* (the unlisted pool); each item stores its selection probability
(1 for listed items, n_audit / pool size for audit items), and `worklist_pools` records every
pool's size, so the design-based estimates (monitoring/estimates.py) can weight the visits.
Why this audit size: docs/monitoring-estimates.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from safetynet.model import tier_rank
from safetynet.policy import OutreachPolicy

WORKLIST_COLUMNS = [
    "item_id",
    "run_id",
    "as_of_date",
    "district",
    "street",
    "household_key",
    "rank",
    "score",
    "tier",
    "n_alerts",
    "audit",
    "selection_prob",
    "groups_json",
]
POOL_COLUMNS = [
    "run_id",
    "as_of_date",
    "district",
    "n_households",
    "n_suppressed",
    "n_listed",
    "n_unlisted",
    "n_audit",
]


def district_capacity(outreach: OutreachPolicy) -> int:
    """Visits a district can make in a month (policy [outreach])."""
    return outreach.visits_per_caseworker_month * outreach.caseworkers_per_district


def audit_size(outreach: OutreachPolicy) -> int:
    """Audit visits per district and month, paid from the capacity (never more than it)."""
    return min(outreach.audit_visits_per_district, district_capacity(outreach))


def list_size(outreach: OutreachPolicy) -> int:
    """Listed visits per district and month: the capacity minus the audit slice."""
    return district_capacity(outreach) - audit_size(outreach)


def build_worklists(
    scored: pd.DataFrame, as_of: date, outreach: OutreachPolicy, seed: int = 0,
    attributes: Sequence[str] = (),
) -> pd.DataFrame:
    """Worklist items of one run, WORKLIST_COLUMNS, sorted by district and rank.

    `scored`: one row per household: household_key, district, score, tier, suppressed (None or
    a reason), n_alerts, optionally street and the group `attributes` (policy [fairness]
    need_audit_attributes, recorded per item in `groups_json`). Suppressed households
    (on assistance, visited recently) are neither listed nor audited. Listed: the first
    `list_size` households of each district by priority (tier, then alerted first, then score,
    then key for reproducibility), selection_prob 1. Audit: a seeded uniform sample of
    `audit_size` households of the rest of the district (the unlisted pool), selection_prob =
    drawn / pool size. Ranks are 1-based per district, listed items first.
    """
    run_id = as_of.isoformat()
    df = _candidates(scored, attributes)
    listed = _top_by_priority(df, list_size(outreach)).assign(audit=False, selection_prob=1.0)
    pool = df[~df.index.isin(listed.index)]
    audit = _audit_sample(pool, audit_size(outreach), seed, as_of)

    items = pd.concat([listed, audit], ignore_index=True)
    items["rank"] = items.groupby("district", sort=False).cumcount() + 1
    items["run_id"] = run_id
    items["as_of_date"] = as_of
    items["item_id"] = run_id + "/" + items["household_key"].astype(str)
    items["groups_json"] = _groups_json(items, attributes)
    items = items.sort_values(["district", "rank"], kind="stable")
    return items[WORKLIST_COLUMNS].reset_index(drop=True)


def district_pools(scored: pd.DataFrame, items: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """One row per district (POOL_COLUMNS): households scored, suppressed, listed, in the
    unlisted pool (not suppressed, not listed: what the audit slice was drawn from) and
    audited. The pool size is what the estimates scale the audit slice up to."""
    per = scored.groupby("district", sort=True).agg(
        n_households=("household_key", "size"),
        n_suppressed=("suppressed", lambda s: int(s.notna().sum())),
    )
    audit = items["audit"].astype(bool)
    per["n_listed"] = items[~audit].groupby("district").size()
    per["n_audit"] = items[audit].groupby("district").size()
    per = per.fillna(0).astype(int)
    per["n_unlisted"] = per["n_households"] - per["n_suppressed"] - per["n_listed"]
    out = per.reset_index().assign(run_id=as_of.isoformat(), as_of_date=as_of)
    return out[POOL_COLUMNS]


def _candidates(scored: pd.DataFrame, attributes: Sequence[str]) -> pd.DataFrame:
    cols = list(dict.fromkeys(["household_key", "district", "street", "score", "tier",
                               "n_alerts", *attributes]))
    df = scored.loc[scored["suppressed"].isna(), [c for c in cols if c in scored]]
    return df if "street" in df else df.assign(street=None)


def _top_by_priority(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """The first `k` rows of each district by (tier, alerted, score desc; key asc).

    Only the rows that can make the cut are sorted: a composite priority (tier rank x 4 +
    alerted x 2 + score, scores in [0, 1], so the order of the three keys is kept) ranked
    within the district picks them in linear time, ties at the cut included.
    """
    if k <= 0 or df.empty:
        return df.iloc[:0]
    tier, alerted = tier_rank(df["tier"]), (df["n_alerts"].to_numpy() > 0).astype(int)
    priority = tier * 4.0 + alerted * 2.0 + np.clip(df["score"].to_numpy(float), 0.0, 1.0)
    df = df.assign(_tier_rank=tier, _alerted=alerted, _priority=priority)
    near = df.groupby("district", sort=False)["_priority"].rank(method="min", ascending=False)
    top = df[near <= k].sort_values(
        ["district", "_tier_rank", "_alerted", "score", "household_key"],
        ascending=[True, False, False, False, True],
        kind="stable",
    )
    top = top[top.groupby("district", sort=False).cumcount() < k]
    return top.drop(columns=["_tier_rank", "_alerted", "_priority"])


def _audit_sample(pool: pd.DataFrame, n: int, seed: int, as_of: date) -> pd.DataFrame:
    """Seeded uniform sample of n households per district; reproducible for (seed, as-of, pool).

    Each household's draw is a keyed hash of its key (SipHash via pandas, key from the seed and
    the as-of date): uniform, independent of row order, and no sort of the whole pool needed.
    selection_prob = drawn / pool size of the district (1 when the pool is smaller than n).
    """
    if n == 0 or pool.empty:
        return pool.iloc[:0].assign(audit=True, selection_prob=np.nan)
    hash_key = f"{seed:08x}{as_of.toordinal():08x}"[-16:]
    u = pd.util.hash_array(pool["household_key"].astype(str).to_numpy(object), hash_key=hash_key)
    pool = pool.assign(_u=u)
    size = pool.groupby("district", sort=False)["household_key"].transform("size")
    sample = pool.groupby("district", sort=False)["_u"].nsmallest(n).index.get_level_values(-1)
    sample = pool.loc[sample].sort_values(["district", "_u"], kind="stable")
    pool_size = size.loc[sample.index].to_numpy(dtype=float)
    prob = np.minimum(pool_size, n) / pool_size
    return sample.drop(columns="_u").assign(audit=True, selection_prob=prob)


def _groups_json(items: pd.DataFrame, attributes: Sequence[str]) -> pd.Series:
    """Per item, a JSON object {attribute: value as text} of the `attributes` present other
    than the district, the item's own column (flags as "0"/"1"; missing values left out)."""
    present = [a for a in attributes if a in items and a != "district"]
    if not present:
        return pd.Series("{}", index=items.index)
    texts = {a: _as_text(items[a]) for a in present}
    return pd.Series(
        [
            json.dumps({a: texts[a][i] for a in present if texts[a][i] is not None})
            for i in range(len(items))
        ],
        index=items.index,
    )


def _as_text(s: pd.Series) -> list[str | None]:
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        num = pd.to_numeric(s, errors="coerce").astype("Float64")
        return [None if pd.isna(v) else f"{v:g}" for v in num]
    return [None if pd.isna(v) else str(v) for v in s]


def load_worklist(
    engine: Engine,
    as_of: date | None = None,
    district: str | None = None,
    street: str | None = None,
    n_reasons: int = 3,
) -> pd.DataFrame:
    """Stored worklist items of a run (default: the latest), with the top reasons as text.

    `reasons` reads like "income_drop (+0.82); oop_ratio (+0.31)" (log-odds contributions);
    the caseworker page renders them in plain language with the feature templates.
    """
    from safetynet.db.tables import score_reasons, score_runs, worklist_items

    with engine.connect() as conn:
        run_id = (
            as_of.isoformat()
            if as_of
            else conn.execute(sa.select(sa.func.max(score_runs.c.run_id))).scalar()
        )
        if run_id is None:
            return pd.DataFrame(columns=[*WORKLIST_COLUMNS, "reasons"])
        q = sa.select(worklist_items).where(worklist_items.c.run_id == run_id)
        if district is not None:
            q = q.where(worklist_items.c.district == district)
        if street is not None:
            q = q.where(worklist_items.c.street == street)
        items = pd.read_sql(q, conn)
        r = sa.select(score_reasons).where(
            score_reasons.c.run_id == run_id, score_reasons.c.rank <= n_reasons
        )
        if district is not None:  # only the reasons of the households shown
            r = r.where(score_reasons.c.household_key.in_(sa.select(q.subquery().c.household_key)))
        reasons = pd.read_sql(r, conn)
    if not reasons.empty:
        text = reasons.sort_values(["household_key", "rank"]).assign(
            t=lambda d: d["feature"] + " (" + d["contribution"].map("{:+.2f}".format) + ")"
        )
        joined = text.groupby("household_key")["t"].agg("; ".join)
        items["reasons"] = items["household_key"].map(joined).fillna("")
    else:
        items["reasons"] = ""
    return items.sort_values(["district", "rank"], kind="stable").reset_index(drop=True)
