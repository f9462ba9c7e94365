"""Bring the service database to the latest schema with the packaged Alembic revisions
(`safetynet/db/migrations/`, shipped as package data; no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from safetynet.config import Settings
from safetynet.db.engine import get_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations, for the database at `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate_engine(engine: Engine, revision: str = "head") -> None:
    """Bring `engine`'s database to `revision` in one transaction (idempotent)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def migrate(settings: Settings | None = None, revision: str = "head") -> None:
    """Bring the configured database (`Settings.db_url`) to `revision` (idempotent)."""
    migrate_engine(get_engine(settings), revision)
