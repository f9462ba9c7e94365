"""Worklists: filled to capacity per district in priority order, a seeded audit slice paid from
that capacity, selection probabilities and pool sizes."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from monitoring_support import POLICY

from safetynet.monitoring.worklists import (
    audit_size,
    build_worklists,
    district_capacity,
    district_pools,
    list_size,
)
from safetynet.policy import PolicyError

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
    assert audit_size(o) == 3 and list_size(o) == 7  # the audit slice is paid from capacity
    none = POLICY.replace(outreach={"audit_visits_per_district": 0}).outreach
    assert audit_size(none) == 0 and list_size(none) == 10
    with pytest.raises(PolicyError, match=r"\[outreach\] audit_visits_per_district: must not "
                       r"exceed the district's capacity .* \(11 > 10\)"):
        POLICY.replace(outreach={"audit_visits_per_district": 11})


def priority(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(frame["tier"].map(RANK), frame["n_alerts"] > 0, frame["score"], strict=True))


RANK = {"green": 0, "yellow": 1, "orange": 2, "red": 3}


def test_lists_fill_each_district_to_capacity_in_priority_order():
    s = scored()
    s["score"] = s["score"] / 10  # all green but 3 households a district: green ones fill
    s.loc[s.groupby("district")["score"].nlargest(3).index.get_level_values(-1), "score"] += 0.06
    s["tier"] = np.select([s.score >= 0.3, s.score >= 0.15, s.score >= 0.07],
                          ["red", "orange", "yellow"], "green")  # fmt: skip
    s.loc[s.index[:5], "suppressed"] = "on_assistance"
    w = build_worklists(s, AS_OF, POLICY.outreach, seed=1)
    assert w.groupby("district").size().to_dict() == {"a": 10, "b": 10}  # capacity, audit in it
    listed = w[~w["audit"]]
    assert listed.groupby("district").size().to_dict() == {"a": 7, "b": 7}
    assert (listed["tier"] == "green").any() and (listed["tier"] != "green").any()
    assert not w["household_key"].isin(s.loc[s.index[:5], "household_key"]).any()
    for d, g in listed.groupby("district"):
        key = priority(g)
        assert key == sorted(key, reverse=True)  # tier first, then alerted, then score
        assert list(g["rank"]) == list(range(1, 8))
        # nobody left off the list outranks the last listed household
        rest = s[(s.district == d) & s.suppressed.isna() & ~s.household_key.isin(g.household_key)]
        assert all(k <= key[-1] for k in priority(rest))
    assert (listed["selection_prob"] == 1.0).all()
    assert (w["item_id"] == AS_OF.isoformat() + "/" + w["household_key"]).all()


def test_small_districts_are_listed_whole_without_an_audit():
    s = scored(12)  # about 6 households a district, fewer than the 7 listed visits
    w = build_worklists(s, AS_OF, POLICY.outreach)
    assert len(w) == 12 and not w["audit"].any()
    pools = district_pools(s, w, AS_OF)
    assert (pools["n_unlisted"] == 0).all() and (pools["n_audit"] == 0).all()


def test_audit_slice_is_below_the_list_with_its_selection_probability():
    s = scored()
    s.loc[s.index[:4], "suppressed"] = "cooldown"
    w1 = build_worklists(s, AS_OF, POLICY.outreach, seed=1)
    w2 = build_worklists(s.sample(frac=1, random_state=3), AS_OF, POLICY.outreach, seed=1)
    w3 = build_worklists(s, AS_OF, POLICY.outreach, seed=2)
    audit = w1[w1["audit"]]
    assert audit.groupby("district").size().to_dict() == {"a": 3, "b": 3}
    assert not audit["household_key"].isin(w1.loc[~w1["audit"], "household_key"]).any()
    pools = district_pools(s, w1, AS_OF).set_index("district")
    for d, g in audit.groupby("district"):
        pool = (s.district == d).sum() - (s.suppressed.notna() & (s.district == d)).sum() - 7
        assert pools.loc[d, "n_unlisted"] == pool and pools.loc[d, "n_audit"] == 3
        assert pools.loc[d, "n_listed"] == 7
        assert pools.loc[d, "n_households"] == (s.district == d).sum()
        np.testing.assert_allclose(g["selection_prob"], 3 / pool)  # n / pool size
        assert (g["rank"] > 7).all()
    assert set(audit["household_key"]) == set(w2.loc[w2["audit"], "household_key"])
    assert set(audit["household_key"]) != set(w3.loc[w3["audit"], "household_key"])


def test_items_carry_the_households_group_attributes():
    s = scored().assign(urban_rural="rural", elderly_living_alone=1.0, has_children=np.nan)
    attributes = POLICY.fairness.need_audit_attributes
    w = build_worklists(s, AS_OF, POLICY.outreach, attributes=attributes)
    groups = w["groups_json"].map(json.loads)
    assert (groups == [{"urban_rural": "rural", "elderly_living_alone": "1"}] * len(w)).all()
    plain = build_worklists(scored(), AS_OF, POLICY.outreach, attributes=attributes)
    assert (plain["groups_json"] == "{}").all()


def test_audit_sample_is_uniform_over_the_pool():
    s = scored(6000, seed=5)
    # 300 audit visits and 10 listed per district
    outreach = POLICY.replace(
        outreach={"audit_visits_per_district": 300, "visits_per_caseworker_month": 155}
    ).outreach
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
