"""Monitoring run: scores, history, reasons, alerts, suppression, idempotence, atomicity."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from monitoring_support import (  # noqa: F401 (pg_url is a fixture)
    POLICY,
    FailingBundle,
    fresh_engine,
    make_features,
    pg_url,
    train_bundle,
)

from safetynet.db.engine import make_engine
from safetynet.db.migrate import migrate_engine
from safetynet.db.tables import MONITORING_TABLES
from safetynet.monitoring.run import jaccard, monitor_run

JAN, FEB = date(2026, 1, 31), date(2026, 2, 28)


@pytest.fixture(scope="module")
def bundle():
    return train_bundle()


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'sn.db'}")
    migrate_engine(eng)
    return eng


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request, tmp_path):
    """SQLite and a real PostgreSQL (bulk writes differ: executemany vs COPY)."""
    eng = fresh_engine(request.param, tmp_path, request)
    yield eng
    eng.dispose()


def table(engine, name: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"SELECT * FROM {name}"), conn)


def snapshot(engine) -> dict[str, pd.DataFrame]:
    return {
        t: table(engine, t).sort_values(list(table(engine, t).columns[:2])).reset_index(drop=True)
        for t in MONITORING_TABLES
    }


def test_run_scores_everyone_and_stores_reasons_for_flagged_and_listed(engine, bundle, tmp_path):
    feats = make_features(600)
    s = monitor_run(engine, bundle, feats, JAN, POLICY, reports_dir=tmp_path / "reports")
    hist = table(engine, "score_history")
    assert len(hist) == 600 == s.n_scored
    prob, contrib = bundle.predict(feats[bundle.features].to_numpy(float))
    got = hist.set_index("household_key").loc[feats["household_key"], "score"].to_numpy()
    np.testing.assert_allclose(got, prob, rtol=1e-9)
    expected_tier = np.select(
        [prob >= 0.3, prob >= 0.15, prob >= 0.07], ["red", "orange", "yellow"], "green"
    )
    assert (
        hist.set_index("household_key").loc[feats["household_key"], "tier"] == expected_tier
    ).all()
    flagged = set(hist.loc[hist["flagged"].astype(bool), "household_key"])
    assert 0 < len(flagged) < 600 and s.n_flagged == len(flagged)
    reasons = table(engine, "score_reasons")
    items = set(table(engine, "worklist_items")["household_key"])
    # reasons for flagged households and worklist items (only positive contributions count)
    assert set(reasons["household_key"]) <= flagged | items
    # the first reason is the household's largest positive SHAP contribution
    i = int(np.flatnonzero(feats["household_key"] == sorted(flagged)[0])[0])
    row = contrib[i, :-1]
    top = reasons[(reasons["household_key"] == sorted(flagged)[0]) & (reasons["rank"] == 1)].iloc[0]
    assert top["feature"] == bundle.features[int(np.argmax(row))]
    assert top["contribution"] == pytest.approx(row.max())
    assert (tmp_path / "reports" / "monitoring" / JAN.isoformat() / "drift.png").stat().st_size > 0
    # first run: every flagged household newly entered a tier above green
    alerts = table(engine, "alerts")
    assert set(alerts.loc[alerts["kind"] == "tier_up", "household_key"]) == flagged
    assert s.prev_run_id is None and s.jaccard_prev is None


def test_second_run_alerts_on_rise_and_reports_jaccard(engine, bundle):
    jan = make_features(400, seed=1)
    monitor_run(engine, bundle, jan, JAN, POLICY)
    feb = jan.copy()
    feb.loc[:49, "income_drop"] += 2.5  # 50 households get much worse
    s = monitor_run(engine, bundle, feb, FEB, POLICY)
    hist = table(engine, "score_history")
    a = hist[hist.run_id == JAN.isoformat()].set_index("household_key")
    b = hist[hist.run_id == FEB.isoformat()].set_index("household_key")
    rise = set(b.index[(b["score"] - a.loc[b.index, "score"]) > 0.10])
    alerts = table(engine, "alerts")
    feb_alerts = alerts[alerts.run_id == FEB.isoformat()]
    assert set(feb_alerts.loc[feb_alerts.kind == "score_rise", "household_key"]) == rise
    assert rise and rise <= set(jan["household_key"][:50])
    up = set(b.index[b["tier"].map(TIER) > a.loc[b.index, "tier"].map(TIER)])
    assert set(feb_alerts.loc[feb_alerts.kind == "tier_up", "household_key"]) == up
    expected = jaccard(a.index[a["flagged"].astype(bool)], b.index[b["flagged"].astype(bool)])
    assert s.jaccard_prev == pytest.approx(expected) and 0 < expected < 1
    assert s.prev_run_id == JAN.isoformat()


TIER = {"green": 0, "yellow": 1, "orange": 2, "red": 3}


def test_suppressed_households_are_scored_but_not_alerted(engine, bundle):
    feats = make_features(300, seed=2)
    first = monitor_run(engine, bundle, feats, JAN, POLICY)
    assert first.n_suppressed == 0
    hist = table(engine, "score_history")
    flagged = sorted(hist.loc[hist["flagged"].astype(bool), "household_key"])
    on_aid, visited = flagged[0], flagged[1]
    assistance = pd.DataFrame(
        {
            "household_key": [on_aid],
            "programme": ["dibao"],
            "start_date": [date(2025, 12, 1)],
            "end_date": [None],
            "knowledge_date": [date(2025, 12, 5)],
        }
    )
    from safetynet.db.feedback import record_outcome

    record_outcome(
        engine,
        {
            "household_key": visited,
            "visit_date": date(2026, 1, 10),
            "caseworker_key_id": "7",
            "outcome": "not_in_hardship",
        },
    )
    ind = pd.DataFrame(
        {
            "household_key": [on_aid, flagged[2]],
            "as_of_date": [JAN, JAN],
            "indicator_id": ["unemployment", "serious_illness"],
            "triggered_on": [date(2026, 1, 5), date(2026, 1, 20)],
            "evidence": ["x", "y"],
        }
    )
    s = monitor_run(engine, bundle, feats, JAN, POLICY, indicators=ind, assistance=assistance)
    assert s.replaced and s.n_suppressed == 2
    hist = table(engine, "score_history").set_index("household_key")
    assert len(hist) == 300
    assert hist.loc[on_aid, "suppressed"] == "on_assistance"
    assert hist.loc[visited, "suppressed"] == "cooldown"
    alerts = table(engine, "alerts")
    assert not alerts["household_key"].isin([on_aid, visited]).any()
    assert set(alerts.loc[alerts.kind.str.startswith("indicator:"), "kind"]) == {
        "indicator:serious_illness"
    }
    work = table(engine, "worklist_items")
    assert not work["household_key"].isin([on_aid, visited]).any()


def test_rerun_replaces_never_duplicates(any_engine, bundle):
    engine = any_engine
    feats = make_features(300, seed=3)
    first = monitor_run(engine, bundle, feats, JAN, POLICY)
    before = snapshot(engine)
    second = monitor_run(engine, bundle, feats, JAN, POLICY)
    after = snapshot(engine)
    assert not first.replaced and second.replaced
    for name in ("score_history", "score_reasons", "alerts", "worklist_items"):
        pd.testing.assert_frame_equal(before[name], after[name])
    assert len(after["score_runs"]) == 1


@pytest.mark.parametrize("failure", ["model", "database"])
def test_failure_midway_leaves_previous_state(any_engine, bundle, failure):
    engine = any_engine
    monitor_run(engine, bundle, make_features(300, seed=4), JAN, POLICY)
    before = snapshot(engine)
    changed = make_features(300, seed=5)  # a different month's data would replace everything
    if failure == "model":
        with pytest.raises(RuntimeError, match="injected"):
            monitor_run(engine, FailingBundle(bundle), changed, JAN, POLICY)
    else:  # the database fails after the old run was deleted and all new rows were written

        def boom(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            # the last statement of the run: every other row is written by then
            if statement.lstrip().upper().startswith("INSERT INTO SCORE_RUNS"):
                raise RuntimeError("injected database failure")

        sa.event.listen(engine, "before_cursor_execute", boom)
        try:
            with pytest.raises(Exception, match="injected database failure"):
                monitor_run(engine, bundle, changed, JAN, POLICY)
        finally:
            sa.event.remove(engine, "before_cursor_execute", boom)
    after = snapshot(engine)
    for name in MONITORING_TABLES:
        pd.testing.assert_frame_equal(before[name], after[name])


def test_bad_feature_table_is_rejected_before_anything_is_written(engine, bundle):
    feats = make_features(50)
    with pytest.raises(ValueError, match="duplicate household_key"):
        monitor_run(engine, bundle, pd.concat([feats, feats.iloc[:1]]), JAN, POLICY)
    with pytest.raises(ValueError, match="lacks columns"):
        monitor_run(engine, bundle, feats.drop(columns="oop_ratio"), JAN, POLICY)
    assert table(engine, "score_runs").empty
