"""The service database (API keys, audit log; later feedback and score history).

SQLite under `$SAFETYNET_HOME` by default, PostgreSQL when `SAFETYNET_DATABASE_URL` is set.
The schema is owned by Alembic migrations in `serving/migrations/` (shipped as package
data) and is brought to `head` by `migrate()`, which the service and the CLI call at start.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
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


class WalCheckpointer:
    """Checkpoints a SQLite database's write-ahead log from a background thread.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages, and
    its fsync stalls that commit: on the scoring service that was the event loop, so every
    request in flight waited (c1 p99 10.8 -> 3.6 ms and c16 p99 63 -> 31 ms with it off,
    `benchmarks/bench_serving.py`). `start()` turns the automatic checkpoint off for the
    engine's connections and checkpoints here instead: PASSIVE (never blocks a writer) every
    `interval` seconds, and TRUNCATE once the log passes `truncate_bytes`, because under
    unbroken writes a passive checkpoint never catches up and the log would only grow.
    """

    def __init__(self, engine: Engine, interval: float = 0.5,
                 truncate_bytes: int = 64 * 1024 * 1024) -> None:
        self.engine = engine
        self.path = Path(engine.url.database or "")
        self.interval = interval
        self.truncate_bytes = truncate_bytes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sa.event.listen(self.engine, "connect", _no_autocheckpoint)
        self.engine.dispose()  # connections opened before keep their own setting
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.checkpoint("TRUNCATE")

    def checkpoint(self, mode: str = "PASSIVE") -> None:
        with contextlib.closing(sqlite3.connect(self.path, timeout=5)) as con:
            con.execute(f"PRAGMA wal_checkpoint({mode})")

    def _run(self) -> None:
        wal = self.path.with_name(self.path.name + "-wal")
        while not self._stop.wait(self.interval):
            big = wal.exists() and wal.stat().st_size > self.truncate_bytes
            with contextlib.suppress(sqlite3.Error):  # busy: the next round tries again
                self.checkpoint("TRUNCATE" if big else "PASSIVE")


def _no_autocheckpoint(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


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
