"""Worklists: capacity per district, priority order, a seeded audit slice below the cut."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from monitoring_support import POLICY

from safetynet.monitoring.worklists import audit_size, build_worklists, district_capacity

AS_OF = date(2026, 3, 31)


def scored(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.random(n) * 0.5
    return pd.DataFrame(
        {
            "household_key": [f"h{i:04d}" for i in range(n)],
            "district": rng.choice(["a", "b"], n),
            "street": rng.choice(["s1", "s2"], n),
            "score": score,
            "tier": np.select(
                [score >= 0.3, score >= 0.15, score >= 0.07], ["red", "orange", "yellow"], "green"
            ),
            "flagged": score >= 0.07,
            "suppressed": None,
            "n_alerts": (rng.random(n) < 0.2).astype(int),
        }
    )


def test_capacity_and_audit_size_come_from_policy():
    o = POLICY.outreach
    assert district_capacity(o) == 10
    assert audit_size(o) == 3  # ceil(0.3 * 10)
    assert audit_size(POLICY.replace(outreach={"audit_fraction": 0.03}).outreach) == 1
    assert audit_size(POLICY.replace(outreach={"audit_fraction": 0}).outreach) == 0


def test_listed_by_priority_cut_at_capacity_per_district():
    s = scored()
    w = build_worklists(s, AS_OF, POLICY.outreach, seed=1)
    listed = w[~w["audit"]]
    assert listed.groupby("district").size().to_dict() == {"a": 10, "b": 10}
    rank = {"green": 0, "yellow": 1, "orange": 2, "red": 3}
    for _, g in listed.groupby("district"):
        key = list(zip(g["tier"].map(rank), g["n_alerts"] > 0, g["score"], strict=True))
        assert key == sorted(key, reverse=True)
        assert list(g["rank"]) == list(range(1, 11))
        # nobody left off the list outranks the last listed household
        rest = s[(s.district == g.district.iloc[0]) & ~s.household_key.isin(g.household_key)]
        rest = rest[rest.flagged]
        last = key[-1]
        assert all(
            k <= last
            for k in zip(rest["tier"].map(rank), rest["n_alerts"] > 0, rest["score"], strict=True)
        )
    assert (w["item_id"] == AS_OF.isoformat() + "/" + w["household_key"]).all()


def test_audit_slice_is_below_the_cut_weighted_and_reproducible():
    s = scored()
    w1 = build_worklists(s, AS_OF, POLICY.outreach, seed=1)
    w2 = build_worklists(s.sample(frac=1, random_state=3), AS_OF, POLICY.outreach, seed=1)
    w3 = build_worklists(s, AS_OF, POLICY.outreach, seed=2)
    audit = w1[w1["audit"]]
    assert audit.groupby("district").size().to_dict() == {"a": 3, "b": 3}
    assert not audit["household_key"].isin(w1.loc[~w1["audit"], "household_key"]).any()
    for d, g in audit.groupby("district"):
        pool = (s.district == d).sum() - 10
        assert np.allclose(g["sampling_weight"], pool / 3)
        assert (g["rank"] > 10).all()
    assert set(audit["household_key"]) == set(w2.loc[w2["audit"], "household_key"])
    assert set(audit["household_key"]) != set(w3.loc[w3["audit"], "household_key"])


def test_audit_sample_is_uniform_over_the_pool():
    s = scored(6000, seed=5)
    # 300 audit visits per district: beyond what a policy file may say (unvalidated copy)
    outreach = POLICY.outreach.model_copy(update={"audit_fraction": 30.0})
    w = build_worklists(s, AS_OF, outreach, seed=0)
    pool = s[~s["household_key"].isin(w.loc[~w["audit"], "household_key"])]
    drawn = pool["household_key"].isin(w.loc[w["audit"], "household_key"])
    assert drawn.sum() == 600
    # flagged-but-cut and unflagged households are drawn at their share of the pool (4 sigma)
    share = pool["flagged"].mean()
    got = pool.loc[drawn, "flagged"].mean()
    assert abs(got - share) < 4 * np.sqrt(share * (1 - share) / 600)
    # and the scores drawn look like the pool's (no tilt towards high or low scores)
    assert abs(pool.loc[drawn, "score"].mean() - pool["score"].mean()) < 4 * pool[
        "score"
    ].std() / np.sqrt(600)
