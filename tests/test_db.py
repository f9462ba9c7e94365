"""The service database's ground floor: one metadata equal to the migrated schema (SQLite and
a real PostgreSQL), WAL checkpoints off the writers' connections, and the identity vault."""

from __future__ import annotations

import sqlite3
import time

import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from monitoring_support import fresh_engine, pg_url  # noqa: F401 (pg_url is a fixture)

from safetynet.db.engine import make_engine
from safetynet.db.identity import HOUSEHOLDS, PERSONS, connect, identities, upsert_rows
from safetynet.db.tables import metadata
from safetynet.db.wal import WalCheckpointer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request, tmp_path):
    eng = fresh_engine(request.param, tmp_path, request)
    yield eng
    eng.dispose()


def test_migration_matches_metadata(any_engine):
    with any_engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diffs if any(t in repr(d) for t in metadata.tables)]
    assert ours == []


def test_wal_checkpoints_run_off_the_writers_connections(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x TEXT)"))
    ckpt = WalCheckpointer(engine, interval=0.05, truncate_bytes=64 * 1024)
    ckpt.start()
    wal = tmp_path / "svc.db-wal"
    try:
        with engine.connect() as conn:  # the writers no longer checkpoint inside a commit
            assert conn.execute(sa.text("PRAGMA wal_autocheckpoint")).scalar() == 0
        for _ in range(40):  # ~400 KB of log, well past truncate_bytes
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 500}] * 20)
        deadline = time.monotonic() + 5
        while wal.stat().st_size > 64 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wal.stat().st_size <= 64 * 1024  # the background thread truncated the log
    finally:
        ckpt.stop()
    assert wal.stat().st_size == 0  # stop() leaves nothing in the log
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 800


def _batch(table, rows: list[tuple]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(list(col), pa.string()) for col in zip(*rows, strict=True)],
        names=list(table.columns))


def test_identity_vault_keeps_the_newest_knowledge_and_filters_by_district(tmp_path):
    path = tmp_path / "identity.sqlite"
    assert identities(path, ["h1"], None) == {}  # no vault yet
    with connect(path) as con:
        upsert_rows(con, HOUSEHOLDS, [_batch(HOUSEHOLDS, [
            ("h1", "1 Elm St", "d1", "Elm", "c1", "2026-02-01"),
            ("h2", "2 Oak St", "d2", "Oak", "c2", "2026-02-01")])])
        upsert_rows(con, PERSONS, [_batch(PERSONS, [
            ("p2", "h1", "Li Hua", "2026-02-01"), ("p1", "h1", "Wang Fang", "2026-02-01")])])
    with connect(path) as con:  # an older delivery arriving late changes nothing
        upsert_rows(con, HOUSEHOLDS, [_batch(HOUSEHOLDS, [
            ("h1", "old address", "d1", "Elm", "c1", "2026-01-01")])])
    got = identities(path, ["h1", "h2", "h9"], frozenset({"d1"}))
    assert got == {"h1": {"address": "1 Elm St", "street": "Elm", "community": "c1",
                          "names": ["Wang Fang", "Li Hua"]}}  # by person_key
    assert set(identities(path, ["h1", "h2"], None)) == {"h1", "h2"}
    assert identities(path, ["h1"], frozenset()) == {}
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM households").fetchone() == (2,)


def test_upgrade_converts_sampling_weights_to_selection_probabilities(tmp_path):
    from safetynet.db.migrate import migrate_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate_engine(engine, "0002_monitoring")
    base = {"run_id": "2026-01-31", "as_of_date": "2026-01-31", "district": "a", "rank": 1,
            "score": 0.2, "tier": "red", "n_alerts": 0}  # fmt: skip
    with engine.begin() as conn:
        for key, audit, weight in (("h1", False, None), ("h2", True, 40.0), ("h3", True, None)):
            conn.execute(sa.text(
                "INSERT INTO worklist_items (item_id, run_id, as_of_date, district, household_key,"
                " rank, score, tier, n_alerts, audit, sampling_weight) VALUES (:item_id, :run_id,"
                " :as_of_date, :district, :household_key, :rank, :score, :tier, :n_alerts,"
                " :audit, :weight)"),
                {**base, "item_id": f"2026-01-31/{key}", "household_key": key, "audit": audit,
                 "weight": weight})  # fmt: skip
    migrate_engine(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT household_key, selection_prob, groups_json FROM worklist_items"
            " ORDER BY household_key")).all()  # fmt: skip
        cols = {c["name"] for c in sa.inspect(conn).get_columns("worklist_items")}
    assert rows == [("h1", 1.0, "{}"), ("h2", 0.025, "{}"), ("h3", 1.0, "{}")]
    assert "sampling_weight" not in cols
