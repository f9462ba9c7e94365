"""`safetynet report` figures checked by hand, and the whole monthly cycle through the CLI
with a real model in a real MLflow registry."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from monitoring_support import POLICY, make_features, register_champion, train_bundle
from typer.testing import CliRunner

from safetynet.db.engine import get_engine, make_engine
from safetynet.db.feedback import record_outcome
from safetynet.db.migrate import migrate_engine
from safetynet.db.tables import alerts, worklist_items, worklist_pools
from safetynet.monitoring.report import (
    build_report,
    precision_drop,
    render_markdown,
    wilson,
    write_report,
)


def test_wilson_interval_known_values():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) is None
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and 0 < hi < 0.2


def item(i: int, audit: bool, prob: float = 1.0, run: str = "2026-01-31", **groups) -> dict:
    return {"item_id": f"{run}/h{i}", "run_id": run, "as_of_date": date.fromisoformat(run),
            "district": "a", "street": None, "household_key": f"h{i}", "rank": i, "score": 0.5,
            "tier": "red", "n_alerts": 1, "audit": audit, "selection_prob": prob,
            "groups_json": json.dumps(groups)}  # fmt: skip


def pool(run: str, n_unlisted: int, n_listed: int = 10, n_audit: int = 4) -> dict:
    return {"run_id": run, "as_of_date": date.fromisoformat(run), "district": "a",
            "n_households": n_listed + n_unlisted, "n_suppressed": 0, "n_listed": n_listed,
            "n_unlisted": n_unlisted, "n_audit": n_audit}  # fmt: skip


def visit(i: int, outcome: str, day: int, run: str = "2026-01-31", disagree: bool = False):
    return {"household_key": f"h{i}", "visit_date": date(2026, 2, day), "caseworker_key_id": "1",
            "outcome": outcome, "worklist_item_id": f"{run}/h{i}",
            "hardship_type": "dibao" if outcome == "hardship_confirmed" else None,
            "disagrees_with_score": disagree,
            "disagreement_code": "score_too_high" if disagree else None}  # fmt: skip


LENIENT = POLICY.replace(outreach={"min_estimate_visits": 1, "max_interval_width": 1.0}).outreach


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate_engine(eng)
    return eng


def test_report_figures_match_hand_computation(engine):
    # 10 listed households, 4 audit households drawn from 400 unlisted (probability 0.01)
    with engine.begin() as conn:
        conn.execute(worklist_items.insert(),
                     [item(i, False, elderly_living_alone=str(i % 2)) for i in range(10)]
                     + [item(i, True, 0.01, elderly_living_alone="1") for i in range(10, 14)])
        conn.execute(worklist_pools.insert(), [pool("2026-01-31", 400)])
        conn.execute(alerts.insert(), [
            {"run_id": "2026-01-31", "household_key": f"h{i}", "kind": "tier_up",
             "as_of_date": date(2026, 1, 31), "detail_json": "{}"} for i in range(4)])  # fmt: skip
    outcomes = (
        [visit(i, "hardship_confirmed", 1 + i) for i in range(6)]  # 6 confirmed
        + [visit(6, "not_in_hardship", 10, disagree=True), visit(7, "not_in_hardship", 11)]
        + [visit(8, "could_not_reach", 12)]  # h9 not visited: 8 of 10 listed reached
        + [visit(10, "hardship_confirmed", 13), visit(11, "not_in_hardship", 14),
           visit(12, "not_in_hardship", 15), visit(13, "not_in_hardship", 16)]
    )  # fmt: skip
    for o in outcomes:
        record_outcome(engine, o)
    r = build_report(engine, LENIENT)
    p, need = r["precision"], r["need"]["overall"]
    assert p["visits_conclusive"] == 8 and p["precision"] == pytest.approx(6 / 8)
    assert p["precision_ci95"] == pytest.approx(wilson(6, 8))
    # listed: 8 of 10 reached, weight 10/8 each; audit: weight 1/0.01 = 100
    assert need["need_precision"]["value"] == pytest.approx(6 / 8)
    assert need["unlisted_needy"]["value"] == pytest.approx(400 * 0.25)
    listed_needy = 6 * 10 / 8
    assert need["need_recall"]["value"] == pytest.approx(listed_needy / (listed_needy + 100))
    for q in ("need_precision", "unlisted_needy", "need_recall"):
        e = need[q]
        assert e["status"] == "ok" and e["low"] < e["value"] < e["high"]
        assert e["months"] == ["2026-01-31"] and e["audit_visits"] == 4
    groups = {(g["attribute"], g["group"], g["quantity"]): g for g in r["need"]["groups"]}
    # elderly living alone: listed h1, h3, h5, h7, h9 (3 in need, 4 reached) + all 4 audited
    eld = groups[("elderly_living_alone", "1", "need_precision")]
    assert eld["value"] == pytest.approx(3 / 4) and eld["listed_visits"] == 4
    # no audited household lives without an elderly person alone: that group gets the status
    assert groups[("elderly_living_alone", "0", "need_recall")]["status"] == (
        "not_enough_audit_visits")
    assert ("district", "a", "need_recall") in groups
    # alerted households h0..h3 were visited 1..4 days into February: 1+31.. days after Jan 31
    assert r["timing"]["alert_to_visit"]["median_days"] == pytest.approx(2.5)
    assert r["timing"]["list_to_visit"]["n"] == 13
    d = r["disagreement"]
    assert d["visits_reached"] == 12 and d["disagreements"] == 1
    assert d["by_code"] == {"score_too_high": 1}
    run = r["runs"][0] if r["runs"] else None
    assert run is None  # no score_runs row in this hand-made database
    md = render_markdown(r)
    assert "| need recall: listed ÷ all in need | 7.0% | [" in md
    assert "| elderly_living_alone | 1 |" in md


def test_too_few_audit_visits_show_the_status_not_a_number(engine, tmp_path):
    # the demo's old situation: a handful of audit visits, none of them in need
    with engine.begin() as conn:
        conn.execute(worklist_items.insert(), [item(i, False) for i in range(10)]
                     + [item(i, True, 2 / 3000) for i in range(10, 12)])  # fmt: skip
        conn.execute(worklist_pools.insert(), [pool("2026-01-31", 3000, n_audit=2)])
    for o in [visit(i, "hardship_confirmed", 1 + i) for i in range(10)] + [
        visit(10, "not_in_hardship", 20), visit(11, "not_in_hardship", 21)
    ]:
        record_outcome(engine, o)
    r = build_report(engine, POLICY.outreach)  # 30 visits needed
    need = r["need"]["overall"]
    assert need["need_recall"]["status"] == "not_enough_audit_visits"
    assert need["need_recall"]["value"] is None and need["need_recall"]["low"] is None
    assert need["need_precision"]["status"] == "not_enough_listed_visits"
    md = render_markdown(r)
    assert "| need recall: listed ÷ all in need | not enough audit visits (2) |" in md
    assert "100.0%" not in md.split("## Visits")[0]  # no headline from two visits
    # a wide interval is a status too, even with enough visits
    wide = build_report(engine, POLICY.replace(
        outreach={"min_estimate_visits": 1, "max_interval_width": 0.5}).outreach)
    assert wide["need"]["overall"]["need_recall"]["status"] == "not_enough_audit_visits"
    md_path, js_path = write_report(r, tmp_path / "reports")
    saved = json.loads(js_path.read_text())
    assert saved["need"]["overall"]["need_recall"]["status"] == "not_enough_audit_visits"
    assert md_path.read_text() == md


def test_precision_drop_compares_latest_with_earlier_runs():
    runs = [
        {"visits_conclusive": 50, "precision": 0.6},
        {"visits_conclusive": 50, "precision": 0.4},
        {"visits_conclusive": 5, "precision": 0.0},
        {"visits_conclusive": 40, "precision": 0.3},
    ]
    assert precision_drop(runs) == pytest.approx(1 - 0.3 / 0.5)
    assert precision_drop(runs[:1]) is None


@pytest.mark.slow
def test_monthly_cycle_through_the_cli(isolated_home, tmp_path):
    from safetynet.cli import app
    from safetynet.config import get_settings

    settings = get_settings()
    bundle = train_bundle()
    version = register_champion(bundle.booster, settings)
    runner = CliRunner()
    jan = make_features(500, seed=7).assign(as_of_date=pd.Timestamp("2026-01-31"))
    feb = jan.assign(as_of_date=pd.Timestamp("2026-02-28"), income_drop=jan["income_drop"] + 0.6)
    path = tmp_path / "features.parquet"
    pd.concat([jan, feb]).to_parquet(path)

    res = runner.invoke(app, ["monitor", "--as-of", "2026-01-31", "--features", str(path)])
    assert res.exit_code == 0, res.output
    assert f"v{version}" in res.output and "scored 500" in res.output
    assert "first monitoring run" in res.output  # no reference yet: this run becomes it
    res = runner.invoke(app, ["worklists", "--district", "east", "--out", str(tmp_path / "w.csv")])
    assert res.exit_code == 0, res.output
    w = pd.read_csv(tmp_path / "w.csv")
    # capacity 60 a district: 54 listed in priority order + 6 audit visits
    assert set(w["district"]) == {"east"} and len(w) == 60 and w["audit"].sum() == 6
    listed = w[~w["audit"]].iloc[0]
    res = runner.invoke(app, ["feedback", "add", "--household", listed.household_key,
                              "--visit-date", "2026-02-05", "--caseworker", "3",
                              "--outcome", "hardship_confirmed", "--hardship-type", "dibao",
                              "--item", listed.item_id])  # fmt: skip
    assert res.exit_code == 0 and res.output.startswith("stored"), res.output
    res = runner.invoke(app, ["feedback", "add", "--household", listed.household_key,
                              "--visit-date", "2026-02-05", "--caseworker", "3",
                              "--outcome", "hardship_confirmed", "--hardship-type", "dibao",
                              "--item", listed.item_id])  # fmt: skip
    assert res.exit_code == 0 and res.output.startswith("already stored"), res.output
    res = runner.invoke(app, ["feedback", "add", "--household", "x", "--visit-date", "2026-02-05",
                              "--caseworker", "3", "--outcome", "hardship_confirmed"])  # fmt: skip
    assert res.exit_code == 2 and "hardship_type is required" in res.output

    res = runner.invoke(app, ["monitor", "--as-of", "2026-02-28", "--features", str(path)])
    assert res.exit_code == 0, res.output
    assert "Jaccard with 2026-01-31" in res.output
    drift = json.loads(
        (settings.reports_dir / "monitoring" / "2026-02-28" / "drift.json").read_text()
    )
    assert drift["psi"]["income_drop"] > 0.1 and drift["reference_source"].startswith("first")
    res = runner.invoke(app, ["report"])
    assert res.exit_code == 0, res.output
    assert "realized precision of listed visits (raw share) | 100.0%" in res.output
    assert "| need recall: listed ÷ all in need | not enough audit visits (0) |" in res.output
    saved = json.loads(next(settings.reports_dir.glob("report-*.json")).read_text())
    assert saved["precision"]["visits_conclusive"] == 1
    with get_engine().connect() as conn:
        runs = (
            conn.execute(sa.text("SELECT run_id FROM score_runs ORDER BY run_id")).scalars().all()
        )
    assert runs == ["2026-01-31", "2026-02-28"]
