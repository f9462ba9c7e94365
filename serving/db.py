"""The service database (API keys, audit log; later feedback and score history).

SQLite under `$SAFETYNET_HOME` by default, PostgreSQL when `SAFETYNET_DATABASE_URL` is set.
The schema is owned by Alembic migrations in `serving/migrations/` (shipped as package
data) and is brought to `head` by `migrate()`, which the service and the CLI call at start.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from safetynet.config import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers run beside the single writer; NORMAL sync is durable across process
    # crashes (an OS crash may lose the last transactions) and keeps a commit ~0.1 ms.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL mode and its parent directory is created."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


@lru_cache(maxsize=8)
def _cached_engine(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine for the configured database (one per URL)."""
    return _cached_engine((settings or get_settings()).db_url)


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(settings: Settings | None = None, revision: str = "head") -> None:
    """Bring the database schema to `revision` (idempotent)."""
    from alembic import command

    engine = get_engine(settings)
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
