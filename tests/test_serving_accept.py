"""Workers take a burst of new connections one at a time (serving/accept.py), and the default
worker count follows the CPUs the process may use."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import safetynet.config as config
from safetynet.config import Settings
from safetynet.serving.accept import CHURN_PER_SECOND, CloseCounter, limit_accepts


class _Protocol(asyncio.Protocol):
    """Like uvicorn's protocols: instances have a __dict__ (asyncio.Protocol has __slots__)."""


async def _accepted_by_one_readiness(per_turn: int | None, pending: int = 3,
                                     churn: int = 0) -> int:
    """Connections taken by one call of the loop's accept handler with `pending` waiting,
    after `churn` connections closed."""
    loop = asyncio.get_running_loop()
    if per_turn is not None:
        balanced = limit_accepts(loop, per_turn)
        assert balanced is not None
        for _ in range(churn):
            balanced.closes.add()
    with socket.create_server(("127.0.0.1", 0), backlog=16) as lsock:
        lsock.setblocking(False)
        clients = [socket.create_connection(lsock.getsockname(), timeout=5)
                   for _ in range(pending)]
        try:
            time.sleep(0.05)  # loopback handshakes complete: all wait in the accept queue
            server = await loop.create_server(asyncio.Protocol, sock=lsock, start_serving=False)
            # What the loop calls when the listening socket is ready (backlog: uvicorn's).
            loop._accept_connection(asyncio.Protocol, lsock, None, server, 2048)  # type: ignore[attr-defined]
            left = 0
            while True:
                try:
                    conn, _ = lsock.accept()
                except BlockingIOError:
                    break
                conn.close()
                left += 1
            await asyncio.sleep(0.05)  # let the accepted connections' transports settle
            server.close()
            return pending - left
        finally:
            for c in clients:
                c.close()


def test_one_accept_per_readiness_leaves_the_rest_for_other_workers():
    assert asyncio.run(_accepted_by_one_readiness(None)) == 3  # asyncio's greedy default
    assert asyncio.run(_accepted_by_one_readiness(1)) == 1
    assert asyncio.run(_accepted_by_one_readiness(2)) == 2


def test_churning_connections_are_all_accepted():
    assert asyncio.run(_accepted_by_one_readiness(1, churn=CHURN_PER_SECOND - 1)) == 1
    assert asyncio.run(_accepted_by_one_readiness(1, churn=CHURN_PER_SECOND)) == 3


def test_closed_connections_are_counted():
    async def closes_seen() -> int:
        loop = asyncio.get_running_loop()
        balanced = limit_accepts(loop, 1)
        server = await loop.create_server(_Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(3):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
        for _ in range(50):  # the server side sees the closes a few loop turns later
            if balanced.closes.per_second() >= 3:
                break
            await asyncio.sleep(0.01)
        server.close()
        return balanced.closes.per_second()

    assert asyncio.run(closes_seen()) == 3


def test_close_counter_forgets_older_seconds(monkeypatch):
    now = [100.2]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    counter = CloseCounter()
    for _ in range(5):
        counter.add()
    now[0] = 101.5  # the previous second still counts
    assert counter.per_second() == 5
    now[0] = 102.1
    assert counter.per_second() == 0


def test_zero_per_turn_keeps_asyncio_default():
    async def check() -> object:
        return limit_accepts(asyncio.get_running_loop(), 0)

    assert asyncio.run(check()) is None


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 2), (16, 2)])
def test_default_workers_follow_usable_cpus(monkeypatch, tmp_path, cpus, workers):
    monkeypatch.setenv("SAFETYNET_HOME", str(tmp_path))
    monkeypatch.delenv("SAFETYNET_SERVE_WORKERS", raising=False)
    monkeypatch.setattr(config, "_cpus", lambda: cpus)
    assert Settings().serve_workers == workers
    monkeypatch.setenv("SAFETYNET_SERVE_WORKERS", "3")
    assert Settings().serve_workers == 3
