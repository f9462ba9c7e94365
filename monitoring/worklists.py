"""Capacity-aware worklists per district, with a random audit slice.

Only visited households get outcomes, so outcomes of listed households say nothing about the
households the list missed. A small uniform random sample of the households *below the list's
cut* (the audit slice) is visited too: its hardship rate, times the size of the unlisted pool,
is an unbiased estimate of the exclusion error. Each audit item carries its sampling weight
(unlisted pool size ÷ audit sample size of its district) for that estimate.
"""

from __future__ import annotations

import math
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
    "sampling_weight",
]


def district_capacity(outreach: OutreachPolicy) -> int:
    """Visits a district can make in a month (policy [outreach])."""
    return outreach.visits_per_caseworker_month * outreach.caseworkers_per_district


def audit_size(outreach: OutreachPolicy) -> int:
    """Audit visits per district: `audit_fraction` of capacity, at least one when non-zero."""
    frac = outreach.audit_fraction
    return math.ceil(frac * district_capacity(outreach) - 1e-9) if frac > 0 else 0


def build_worklists(
    scored: pd.DataFrame, as_of: date, outreach: OutreachPolicy, seed: int = 0
) -> pd.DataFrame:
    """Worklist items of one run.

    `scored`: household_key, district, score, tier, flagged, suppressed, n_alerts and optionally
    street. Listed: flagged households not suppressed (on assistance / visited recently), by
    priority (tier, then alerted first, then score, then key for reproducibility), cut at the
    district's capacity. Audit: a seeded uniform sample of the district's remaining unsuppressed
    households (everyone below the cut), marked `audit`.
    """
    run_id = as_of.isoformat()
    cap, n_audit = district_capacity(outreach), audit_size(outreach)
    cols = ["household_key", "district", "street", "score", "tier", "n_alerts", "flagged"]
    df = scored.loc[scored["suppressed"].isna(), [c for c in cols if c in scored]]
    if "street" not in df:
        df = df.assign(street=None)
    # only the flagged need ordering (a fraction of the cohort): sort those alone
    eligible = df[df["flagged"].astype(bool)]
    eligible = eligible.assign(
        _tier_rank=tier_rank(eligible["tier"]), _alerted=(eligible["n_alerts"] > 0).astype(int)
    ).sort_values(
        ["district", "_tier_rank", "_alerted", "score", "household_key"],
        ascending=[True, False, False, False, True],
        kind="stable",
    )
    listed = eligible[eligible.groupby("district", sort=False).cumcount() < cap]
    listed = listed.assign(audit=False, sampling_weight=np.nan)

    pool = df[~df.index.isin(listed.index)]
    audit = _audit_sample(pool, n_audit, seed, as_of)

    items = pd.concat([listed, audit], ignore_index=True)
    items["rank"] = items.groupby("district", sort=False).cumcount() + 1
    items["run_id"] = run_id
    items["as_of_date"] = as_of
    items["item_id"] = run_id + "/" + items["household_key"].astype(str)
    items = items.sort_values(["district", "rank"], kind="stable")
    return items[WORKLIST_COLUMNS].reset_index(drop=True)


def _audit_sample(pool: pd.DataFrame, n: int, seed: int, as_of: date) -> pd.DataFrame:
    """Seeded uniform sample of n households per district; reproducible for (seed, as-of, pool).

    Each household's draw is a keyed hash of its key (SipHash via pandas, key from the seed and
    the as-of date): uniform, independent of row order, and no sort of the whole pool needed.
    """
    if n == 0 or pool.empty:
        return pool.iloc[:0].assign(audit=True, sampling_weight=np.nan)
    hash_key = f"{seed:08x}{as_of.toordinal():08x}"[-16:]
    u = pd.util.hash_array(pool["household_key"].astype(str).to_numpy(object), hash_key=hash_key)
    pool = pool.assign(_u=u)
    size = pool.groupby("district", sort=False)["household_key"].transform("size")
    sample = pool.groupby("district", sort=False)["_u"].nsmallest(n).index.get_level_values(-1)
    sample = pool.loc[sample].sort_values(["district", "_u"], kind="stable")
    taken = np.minimum(size.loc[sample.index], n)
    return sample.assign(audit=True, sampling_weight=(size.loc[sample.index] / taken).to_numpy())


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
