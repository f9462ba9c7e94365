"""Spread connections evenly over BentoML's worker processes.

BentoML's workers share one listening socket, and asyncio's accept handler takes every
pending connection in one go, so a client's burst of keep-alive connections can land whole on
one worker. `limit_accepts` makes a worker take one connection per loop turn (nginx's
`multi_accept off`), so the other worker, woken by the same readiness, takes the next.
While connections churn (`CHURN_PER_SECOND` or more closed in the current or the previous
second) a worker takes all that wait, as asyncio does: short-lived connections need no
balancing. The listen backlog itself is never changed.

Why, with the measured splits and throughput, and what was tried instead: docs/api.md,
"Where the c16 tail came from".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable
from typing import Any

CHURN_PER_SECOND = 32  # closes per second from which connections count as short-lived


class CloseCounter:
    """Connections closed in the current and the previous second of `time.monotonic`."""

    def __init__(self) -> None:
        self._second = 0
        self._now = 0
        self._previous = 0

    def _roll(self) -> None:
        second = int(time.monotonic())
        if second != self._second:
            self._previous = self._now if second == self._second + 1 else 0
            self._now = 0
            self._second = second

    def add(self) -> None:
        self._roll()
        self._now += 1

    def per_second(self) -> int:
        self._roll()
        return max(self._now, self._previous)


class BalancedAccept:
    """Replacement for the loop's accept handler: `per_turn` connections per readiness, or
    all that wait while connections churn."""

    def __init__(self, accept: Callable[..., Any], per_turn: int = 1,
                 churn: int = CHURN_PER_SECOND) -> None:
        self.accept = accept
        self.per_turn = per_turn
        self.churn = churn
        self.closes = CloseCounter()
        self._all = 1  # the largest count asyncio asked for: its "take all that wait"

    def __call__(self, protocol_factory: Any, sock: Any, sslcontext: Any = None,
                 server: Any = None, backlog: int = 100, *args: Any, **kwargs: Any) -> Any:
        self._all = max(self._all, backlog)
        n = self._all if self.closes.per_second() >= self.churn else self.per_turn
        return self.accept(self._counting(protocol_factory), sock, sslcontext, server, n,
                           *args, **kwargs)

    def _counting(self, factory: Any) -> Callable[[], Any]:
        """`factory`, with each protocol's `connection_lost` also counting the close."""
        def make() -> Any:
            proto = factory()
            lost = proto.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                self.closes.add()
                lost(exc)

            # uvicorn's protocols have an instance dict; one with __slots__ is not counted
            # (its worker then stays at one accept per turn).
            with contextlib.suppress(AttributeError):
                proto.connection_lost = connection_lost
            return proto
        return make


def limit_accepts(loop: asyncio.AbstractEventLoop, per_turn: int = 1) -> BalancedAccept | None:
    """Make `loop` accept `per_turn` connections each time a listening socket is ready
    (all that wait while connections churn). Applies to servers the loop starts afterwards.
    Does nothing (None) for `per_turn` < 1 and for loops other than asyncio's selector loop
    (uvloop accepts in C)."""
    if per_turn < 1 or not isinstance(loop, BaseSelectorEventLoop):
        return None
    accept = getattr(loop, "_accept_connection", None)  # asyncio's handler, looked up by
    if accept is None:  # `_start_serving` when a server starts listening
        return None
    balanced = BalancedAccept(accept, per_turn)
    loop._accept_connection = balanced  # type: ignore[attr-defined]
    return balanced
