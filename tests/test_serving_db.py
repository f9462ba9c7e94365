"""Service database: migrations, API keys and the audit log on SQLite and, for real,
PostgreSQL at 127.0.0.1:5432 (a fresh database per session, dropped afterwards)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from safetynet.config import get_settings
from safetynet.db.engine import get_engine, make_engine
from safetynet.db.migrate import migrate
from safetynet.serving.audit import AuditLog, audit_entry, read_audit
from safetynet.serving.keys import KeyCache, create_key, hash_key, list_keys, lookup, revoke_key

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_url():
    admin = make_engine(PG_ADMIN)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        print(f"PostgreSQL unreachable at 127.0.0.1:5432: {exc}")
        pytest.skip(f"PostgreSQL unreachable at 127.0.0.1:5432: {type(exc).__name__}")
    name = f"safetynet_test_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, monkeypatch):
    if request.param == "postgres":
        monkeypatch.setenv("SAFETYNET_DATABASE_URL", request.getfixturevalue("pg_url"))
    get_settings.cache_clear()
    migrate()
    migrate()  # idempotent
    eng = get_engine()
    with eng.begin() as conn:  # the postgres database is shared by the session's tests
        conn.execute(sa.text("DELETE FROM audit_log"))
        conn.execute(sa.text("DELETE FROM api_keys"))
    return eng


def test_migrations_create_the_tables(engine):
    names = set(sa.inspect(engine).get_table_names())
    assert {"api_keys", "audit_log", "alembic_version"} <= names


def test_keys_are_stored_hashed_and_roles_checked(engine):
    key_id, token = create_key(engine, "caseworker", ["d2", "d1", "d1"], name="alice")
    assert token.startswith("sn_") and len(token) >= 40
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash, districts FROM api_keys")).one()
    assert stored.key_hash == hash_key(token) and token not in str(stored)
    who = lookup(engine, token)
    assert who.key_id == key_id and who.role == "caseworker"
    assert who.may_see("d1") and not who.may_see("d3") and not who.may_see(None)
    assert lookup(engine, token + "x") is None and lookup(engine, "garbage") is None
    listed = list_keys(engine)
    assert listed[0]["name"] == "alice" and "key_hash" not in listed[0]
    assert listed[0]["districts"] == ["d1", "d2"]
    for bad in (("boss", None), ("caseworker", None), ("platform", ["d1"])):
        with pytest.raises(ValueError):
            create_key(engine, *bad)


def test_revocation_and_the_key_cache(engine):
    key_id, token = create_key(engine, "platform")
    cache = KeyCache(engine, ttl=0)
    assert cache.authenticate(token).role == "platform"
    assert revoke_key(engine, key_id) and not revoke_key(engine, key_id)
    assert cache.authenticate(token) is None
    assert list_keys(engine)[0]["revoked_at"] is not None


def test_audit_log_group_commits_concurrent_writers(engine):
    log = AuditLog(engine)
    entries = [audit_entry("/score", [f"hh{i}", f"hh{i + 1}"], 7, "platform", "m", "3")
               for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda e: log.write(e), entries))
    log.close()
    rows = read_audit(engine, limit=500)
    assert len(rows) == 200
    assert {tuple(r["households"]) for r in rows} == {tuple(e["households"]) for e in entries}
    assert all(r["model_version"] == "3" and r["role"] == "platform" for r in rows)


def test_audit_write_failure_reaches_the_caller(engine):
    log = AuditLog(engine)
    with pytest.raises(Exception):  # noqa: B017 - any database error must surface
        log.write({"at": None, "endpoint": "/score"})  # violates NOT NULL
    log.write(audit_entry("/explain", ["hh1"], 1, "admin", "m", "1"))  # the writer survives
    log.close()
    assert read_audit(engine)[0]["endpoint"] == "/explain"


def test_keys_cli_prints_only_the_key():
    from typer.testing import CliRunner

    from safetynet.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--role", "caseworker", "--districts",
                              "d1,d2", "--name", "alice"])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    assert token.startswith("sn_") and "\n" not in token
    get_settings.cache_clear()
    assert lookup(get_engine(), token).districts == frozenset({"d1", "d2"})
    listed = runner.invoke(app, ["keys", "list"])
    assert "alice" in listed.stdout and token not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", "1"]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "1"]).exit_code == 1
    assert runner.invoke(app, ["keys", "create", "--role", "boss"]).exit_code == 2


def test_inline_audit_write(engine):
    log = AuditLog(engine)
    log.write_inline(audit_entry("/score", ["hh9"], 2, "platform", "m", "4"))
    row = read_audit(engine)[0]
    assert row["households"] == ["hh9"] and row["model_version"] == "4"
