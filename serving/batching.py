"""Coalescing of small /score requests that are in flight together into one scoring call.

Most of a one-household score is fixed cost per call, not per row: the `pred_contrib` call,
about fifteen small NumPy/pandas operations of the indicator rules, the programme rules and
the reason ranking. At 16 concurrent connections several requests wait on the event loop at
the same time; scoring them as one vectorised batch pays those costs once.

No timer and no latency budget (BentoML's adaptive batching dropped requests with 503 under
load when its budget was tight): a request queues, and the queue is scored on the next turn
of the event loop, with whatever has arrived by then. A lone request waits one loop turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from safetynet.serving.scoring import Batch, Scorer, _as_rows


def merge(batches: list[Batch], features: list[str]) -> Batch:
    """One Batch holding the rows of `batches` in order (records and households may mix)."""
    if len(batches) == 1:
        return batches[0]
    names = sorted({name for b in batches for name in b.extra})
    extra = {
        name: np.concatenate([b.extra.get(name, np.full(len(b.ids), np.nan)) for b in batches])
        for name in names
    }
    rows: list[dict[str, Any]] = []
    for b in batches:
        rows.extend(b.rows if b.rows is not None else _as_rows(b.X, features))
    return Batch(
        [i for b in batches for i in b.ids], np.vstack([b.X for b in batches]),
        [d for b in batches for d in b.as_of], extra, rows,
    )


class ScoreBatcher:
    """Scores queued (bundle, batch, language) requests together; event-loop only."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self._pending: list[tuple[Any, Batch, str, asyncio.Future]] = []
        self.calls = 0  # scoring calls made, and rows they covered (for tests and tuning)
        self.requests = 0

    async def score(self, bundle: Any, batch: Batch, lang: str) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((bundle, batch, lang, fut))
        return await fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        groups: dict[tuple[int, str], list[tuple[Any, Batch, str, asyncio.Future]]] = {}
        for item in pending:  # one call per model version and language
            groups.setdefault((id(item[0]), item[2]), []).append(item)
        for items in groups.values():
            bundle, lang = items[0][0], items[0][2]
            self.calls += 1
            self.requests += len(items)
            try:
                results = self.scorer.score(
                    bundle, merge([it[1] for it in items], list(bundle.features)), lang
                )
            except Exception as exc:  # every request of the group sees the failure
                for *_, fut in items:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            start = 0
            for _, batch, _, fut in items:
                end = start + len(batch.ids)
                if not fut.done():  # a cancelled request (client gone) is skipped
                    fut.set_result(results[start:end])
                start = end


class LoopGroupCommit:
    """Audit rows of requests in flight together, written in one transaction on the event
    loop (SQLite). Each caller resumes only after the commit that holds its row, so an
    answered request is always logged, as with one commit per request, at a fraction of the
    cost (one transaction instead of one per request)."""

    def __init__(self, write_many: Any) -> None:
        self.write_many = write_many
        self._pending: list[tuple[dict[str, Any], asyncio.Future]] = []

    async def write(self, entry: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((entry, fut))
        await fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            self.write_many([entry for entry, _ in pending])
        except Exception as exc:  # every caller answers 503
            for _, fut in pending:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for _, fut in pending:
            if not fut.done():
                fut.set_result(None)

