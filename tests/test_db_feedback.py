"""Feedback store on SQLite and on a real PostgreSQL: validation, idempotence, CSV import.
(The labels outcomes become: tests/test_training_labels.py.)"""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa
from monitoring_support import fresh_engine, pg_url  # noqa: F401 (pg_url is a fixture)

from safetynet.db.feedback import (
    FeedbackError,
    VisitOutcome,
    import_outcomes_csv,
    load_outcomes,
    record_outcome,
)
from safetynet.db.tables import worklist_items


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    eng = fresh_engine(request.param, tmp_path, request)
    yield eng
    eng.dispose()


def outcome(**kw):
    base = {
        "household_key": "hh1",
        "visit_date": date(2026, 2, 10),
        "caseworker_key_id": "12",
        "outcome": "hardship_confirmed",
        "hardship_type": "dibao",
        "programmes_referred": ["dibao", "medical_assistance"],
    }
    return {**base, **kw}


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM visit_outcomes")).scalar()


def test_record_is_idempotent_and_returns_stored_row(engine):
    first = record_outcome(engine, outcome(submission_id="form-1"))
    again = record_outcome(
        engine, outcome(submission_id="form-1", outcome="not_in_hardship", hardship_type=None)
    )
    assert first.created and not again.created
    assert again.row == first.row and again.row["outcome"] == "hardship_confirmed"
    # without a client id the natural key (household, date, caseworker) makes it idempotent
    a = record_outcome(engine, outcome(household_key="hh2"))
    b = record_outcome(engine, outcome(household_key="hh2"))
    assert a.created and not b.created and a.row["id"] == b.row["id"]
    assert count(engine) == 2
    stored = load_outcomes(engine)
    assert stored.loc[stored.submission_id == "form-1", "programmes_referred"].item() == (
        "dibao;medical_assistance"
    )


def test_concurrent_resubmissions_store_one_row(engine):
    results, errors = [], []

    def submit():
        try:
            results.append(record_outcome(engine, outcome(submission_id="race")))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if engine.dialect.name == "sqlite":  # SQLite serialises writers; some may time out, none dup
        assert all("locked" in str(e) for e in errors)
    else:
        assert not errors
    assert count(engine) == 1
    assert sum(r.created for r in results) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hardship_type": None}, "hardship_type is required"),
        ({"outcome": "moved"}, "only allowed"),
        ({"outcome": "gone"}, "outcome"),
        ({"hardship_type": "lottery"}, "hardship_type"),
        ({"disagrees_with_score": True}, "disagreement_code is required"),
        ({"visit_date": date(2999, 1, 1)}, "in the future"),
        ({"programmes_enrolled": ["Dibao!"]}, "lower_snake_case"),
        ({"extra_field": 1}, "extra"),
    ],
)
def test_invalid_outcomes_are_rejected_with_a_clear_message(engine, change, message):
    with pytest.raises(FeedbackError, match=message):
        record_outcome(engine, outcome(**change))
    assert count(engine) == 0


def test_worklist_item_decides_audit_and_household(engine):
    with engine.begin() as conn:
        conn.execute(
            worklist_items.insert(),
            [
                {
                    "item_id": "2026-01-31/hh1",
                    "run_id": "2026-01-31",
                    "as_of_date": date(2026, 1, 31),
                    "district": "a",
                    "street": None,
                    "household_key": "hh1",
                    "rank": 11,
                    "score": 0.01,
                    "tier": "green",
                    "n_alerts": 0,
                    "audit": True,
                    "selection_prob": 0.025,
                }
            ],
        )
    stored = record_outcome(engine, outcome(worklist_item_id="2026-01-31/hh1", audit=False))
    assert stored.row["audit"] is True
    with pytest.raises(FeedbackError, match="another household"):
        record_outcome(engine, outcome(household_key="hh9", worklist_item_id="2026-01-31/hh1"))


def test_csv_import_is_all_or_nothing_and_skips_known_rows(engine, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(
        "household_key,visit_date,caseworker_key_id,outcome,hardship_type,programmes_referred,"
        "disagrees_with_score,disagreement_code,disagreement_text,submission_id\n"
        "hh1,2026-02-01,3,hardship_confirmed,temporary,temporary;dibao,false,,,s1\n"
        'hh2,2026-02-02,3,not_in_hardship,,,true,score_too_high,"家里有工作, 收入稳定",s2\n'
        "hh3,2026-02-03,3,could_not_reach,,,0,,,\n",
        encoding="utf-8",
    )
    r = import_outcomes_csv(engine, good)
    assert (r.inserted, r.duplicates) == (3, 0)
    r = import_outcomes_csv(engine, good)
    assert (r.inserted, r.duplicates) == (0, 3)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "household_key,visit_date,caseworker_key_id,outcome\n"
        "hh7,2026-02-01,3,moved\nhh8,not-a-date,3,moved\nhh9,2026-02-01,3,teleported\n"
    )
    with pytest.raises(FeedbackError, match=r"(?s)2 invalid line\(s\).*line 3.*line 4"):
        import_outcomes_csv(engine, bad)
    assert count(engine) == 3
    df = load_outcomes(engine)
    assert df.loc[df.submission_id == "s2", "disagreement_text"].item() == "家里有工作, 收入稳定"


def test_visit_outcome_model_is_the_documented_contract():
    fields = set(VisitOutcome.model_fields)
    assert {
        "household_key",
        "visit_date",
        "caseworker_key_id",
        "outcome",
        "hardship_type",
        "programmes_referred",
        "programmes_enrolled",
        "disagrees_with_score",
        "disagreement_code",
        "disagreement_text",
        "worklist_item_id",
        "audit",
        "submission_id",
    } == fields
