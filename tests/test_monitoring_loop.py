"""The closed loop through the CLI, two months: monitor -> worklists filled to capacity with an
audit slice -> simulated visits answered by a truth file -> feedback import -> report with
need estimates. A real model in a real MLflow registry; the truth is a small hand-made
`truth/household_months.parquet` in the simulator's layout, read only by `simulate-visits`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from monitoring_support import make_features, register_champion, train_bundle
from typer.testing import CliRunner

from safetynet.config import get_settings, load_policy
from safetynet.db.engine import get_engine
from safetynet.pseudonym import pseudonymize

MONTHS = ("2026-01-31", "2026-02-28")
N = 2400  # 3 districts of about 800 households


def _city(tmp_path, secret: bytes) -> tuple[pd.DataFrame, pd.Series]:
    """Feature rows for both months and the truth's hardship flag per household key."""
    rng = np.random.default_rng(11)
    base = make_features(N, seed=11)
    ids = pd.Series([f"{i:06d}" for i in range(N)])
    base["household_key"] = pseudonymize(secret, "household", ids).to_numpy()
    base["elderly_living_alone"] = (rng.random(N) < 0.15).astype(float)
    base["urban_rural"] = rng.choice(["urban", "rural"], N)
    logit = -3.2 + 1.0 * base["income_drop"] + 0.8 * base["unemployed"]
    in_need = rng.random(N) < 1 / (1 + np.exp(-logit.to_numpy()))
    truth = tmp_path / "city" / "truth"
    truth.mkdir(parents=True)
    pd.concat([
        pd.DataFrame({"household_id": ids, "month": pd.Timestamp(m), "in_hardship": in_need,
                      "rigid_expenditure_pc": 0.0, "poverty_line": 900.0})
        for m in ("2026-01-01", "2026-02-01", "2026-03-01")
    ]).to_parquet(truth / "household_months.parquet")  # fmt: skip
    frames = pd.concat([base.assign(as_of_date=pd.Timestamp(m)) for m in MONTHS])
    return frames, pd.Series(in_need, index=base["household_key"])


@pytest.mark.slow
def test_two_months_of_the_loop_store_probabilities_and_report_need(tmp_path):
    from safetynet.cli import app

    settings = get_settings()
    outreach = load_policy().outreach
    register_champion(train_bundle().booster, settings)
    frames, in_need = _city(tmp_path, settings.secret())
    features = tmp_path / "features.parquet"
    frames.to_parquet(features)
    runner = CliRunner()
    for month, visit_day in zip(MONTHS, ("2026-02-10", "2026-03-10"), strict=True):
        res = runner.invoke(app, ["monitor", "--as-of", month, "--features", str(features)])
        assert res.exit_code == 0, res.output
        out = tmp_path / f"visits-{month}.csv"
        res = runner.invoke(app, ["simulate-visits", "--as-of", month, "--visit-date", visit_day,
                                  "--city", str(tmp_path / "city"), "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert f"{3 * outreach.audit_visits_per_district} audit" in res.output
        res = runner.invoke(app, ["feedback", "import", str(out)])
        assert res.exit_code == 0, res.output

    with get_engine().connect() as conn:
        items = pd.read_sql(sa.text("SELECT * FROM worklist_items"), conn)
        pools = pd.read_sql(sa.text("SELECT * FROM worklist_pools"), conn)
        outcomes = pd.read_sql(sa.text("SELECT * FROM visit_outcomes"), conn)
    capacity = outreach.visits_per_caseworker_month * outreach.caseworkers_per_district
    per = items.groupby(["run_id", "district"])["audit"].agg(["size", "sum"])
    assert (per["size"] == capacity).all()  # every district's list is full, audit included
    assert (per["sum"] == outreach.audit_visits_per_district).all()
    audit = items[items["audit"].astype(bool)].merge(pools, on=["run_id", "district"])
    np.testing.assert_allclose(audit["selection_prob"],
                               outreach.audit_visits_per_district / audit["n_unlisted"])
    assert (items.loc[~items["audit"].astype(bool), "selection_prob"] == 1).all()
    # the feedback store recorded which visits were audits
    linked = outcomes.merge(items, left_on="worklist_item_id", right_on="item_id")
    assert len(linked) == len(items)
    assert (linked["audit_x"].astype(bool) == linked["audit_y"].astype(bool)).all()
    assert linked["audit_x"].astype(bool).sum() == 2 * 3 * outreach.audit_visits_per_district

    res = runner.invoke(app, ["report"])
    assert res.exit_code == 0, res.output
    assert "## Need: who of the households in need the lists reach" in res.output
    r = json.loads(next(settings.reports_dir.glob("report-*.json")).read_text())
    need = r["need"]["overall"]
    # precision: the latest month alone has enough listed visits (it does not pool the months
    # the audit slice needs); its interval covers the truth's share of that month's list
    p = need["need_precision"]
    assert p["status"] == "ok" and p["months"] == [MONTHS[-1]]
    listed = items[~items["audit"].astype(bool) & (items["run_id"] == MONTHS[-1])]
    truth_share = in_need.loc[listed["household_key"]].mean()
    assert p["low"] <= truth_share <= p["high"]
    # 36 audit visits: recall pools both months, and is a value or the status, never a wide
    # interval
    rec = need["need_recall"]
    assert sorted(rec["months"]) == list(MONTHS) and rec["audit_visits"] >= 30
    assert rec["status"] == "not_enough_audit_visits" or rec["high"] - rec["low"] <= 0.5
    groups = {(g["attribute"], g["group"]) for g in r["need"]["groups"]}
    assert {("elderly_living_alone", "1"), ("urban_rural", "rural"), ("district", "east")} <= groups
    assert [run["audit_items"] for run in r["runs"]] == [3 * outreach.audit_visits_per_district] * 2
