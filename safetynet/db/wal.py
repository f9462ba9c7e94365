"""Write-ahead-log checkpoints of a SQLite service database, off the writers' connections."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine


class WalCheckpointer:
    """Checkpoints a SQLite database's write-ahead log from a background thread.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages, and
    its fsync stalls that commit: on the scoring service that was the event loop, so every
    request in flight waited (figures: docs/api.md, Performance). `start()` turns the
    automatic checkpoint off for the engine's connections and checkpoints here instead:
    PASSIVE (never blocks a writer) every `interval` seconds, and TRUNCATE once the log
    passes `truncate_bytes`, because under unbroken writes a passive checkpoint never
    catches up and the log would only grow.
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
