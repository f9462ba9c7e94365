"""Append-only audit log of scoring and explanation requests.

Each row: time, key id, role, endpoint, status, household pseudonyms, model name and
version. Never ID numbers or names: the API only ever sees pseudonyms (`household_key`),
and records sent by a caller are logged as `record:<index>`.

On PostgreSQL, writes go through one background thread that commits everything queued in
one transaction (group commit) and then resolves each caller's future; the service awaits
the future before it answers, so an answered request is always on disk, and concurrent
requests share one commit. On SQLite (a local file; WAL with synchronous=NORMAL, so a
commit is a write to the WAL without fsync) the rows of requests in flight together are
committed on the event loop in one transaction (`write_many_inline`, through
`batching.LoopGroupCommit`), cheaper than the hand-over; each request is answered only
after its row is committed. Durability is SQLite's synchronous=NORMAL: a committed row
survives a crash of the service, while a power loss or OS crash can lose the last
transactions not yet checkpointed. The application never updates or deletes audit rows.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from safetynet.db.tables import audit_log

_COLUMNS = [c for c in audit_log.c if c.name != "id"]
_INSERT = (f"INSERT INTO {audit_log.name} ({', '.join(c.name for c in _COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))})")  # SQLite's qmark style


def audit_entry(
    endpoint: str,
    households: list[str],
    key_id: int | None,
    role: str | None,
    model_name: str | None,
    model_version: str | None,
    status: int = 200,
) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC), "key_id": key_id, "role": role, "endpoint": endpoint,
        "status": status, "households": list(households), "n_households": len(households),
        "model_name": model_name, "model_version": model_version,
    }


class AuditLog:
    """Group-committing writer for audit rows (thread-safe; one writer thread per log)."""

    def __init__(self, engine: Engine, max_batch: int = 500) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[dict, Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._inline_lock = threading.Lock()
        self.inline = engine.dialect.name == "sqlite"
        self._raw: Any = None  # DB-API connection held by write_inline (SQLite)
        self._binds: list[tuple[str, Any]] = []

    def submit(self, entry: dict[str, Any]) -> Future:
        """Queue a row; the future resolves once it is committed (or carries the error)."""
        self._ensure_thread()
        fut: Future = Future()
        self._queue.put((entry, fut))
        return fut

    def write(self, entry: dict[str, Any], timeout: float = 30.0) -> None:
        """Write one row and wait for the commit."""
        self.submit(entry).result(timeout)

    def write_inline(self, entry: dict[str, Any]) -> None:
        """Write one row in the calling thread (no thread hand-over); see `write_many_inline`."""
        self.write_many_inline([entry])

    def write_many_inline(self, entries: list[dict[str, Any]]) -> None:
        """Write rows in one transaction in the calling thread (no thread hand-over).

        For SQLite (WAL, synchronous=NORMAL: `safetynet.db.engine`), where handing the row to
        the writer thread costs more than the commit. The row goes through one held DB-API
        connection and a fixed INSERT, with SQLAlchemy's own bind processors, so it is stored
        exactly as a Core insert would store it. Figures: docs/api.md, "What was done".
        """
        if not self.inline:  # another database: the portable Core insert
            with self._inline_lock, self.engine.begin() as conn:
                conn.execute(audit_log.insert(), entries)
            return
        with self._inline_lock:
            if self._raw is None:
                self._raw = self.engine.raw_connection()
                dialect = self.engine.dialect
                self._binds = [(c.name, c.type.dialect_impl(dialect).bind_processor(dialect))
                               for c in _COLUMNS]  # the SQLite types' own conversions
            values = [tuple(entry[name] if proc is None else proc(entry[name])
                            for name, proc in self._binds) for entry in entries]
            cur = self._raw.cursor()
            try:
                cur.executemany(_INSERT, values)
                self._raw.commit()
            except Exception:
                self._raw.rollback()
                raise
            finally:
                cur.close()

    def close(self) -> None:
        """Flush what is queued, stop the writer thread and release the inline connection."""
        with self._inline_lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="audit-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            stop = item is None
            batch = [] if stop else [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[dict, Future]]) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(audit_log.insert(), [entry for entry, _ in batch])
        except Exception as exc:  # the callers see the failure and answer 503
            for _, fut in batch:
                fut.set_exception(exc)
            return
        for _, fut in batch:
            fut.set_result(None)


def read_audit(engine: Engine, limit: int = 1000) -> list[dict[str, Any]]:
    """The newest audit rows, newest first (for tests and operators)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]
