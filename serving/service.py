"""The SafetyNet scoring API: a BentoML 1.4 service.

Endpoints: POST /score, POST /explain, POST /reload (admin); BentoML adds /healthz,
/livez, /readyz, /metrics (Prometheus: request counts and latency histograms per
endpoint) and /docs.json (OpenAPI). Run with `safetynet serve` or
`bentoml serve safetynet.serving.service:SafetyNet`.

Endpoints are `async` and compute on the event loop for small batches: a one-household
request costs well under a millisecond of NumPy and LightGBM, less than a thread hop, and
BentoML runs sync endpoints one at a time per worker (threads=1 by default). Small /score
requests in flight together are scored as one batch (`batching.ScoreBatcher`) and their
audit rows committed in one transaction (`batching.LoopGroupCommit`); large batches go to
a worker thread so they do not stall the event loop. With two or more workers each takes
new connections one per loop turn (`accept.limit_accepts`), so a client's connection pool
spreads over the workers. Measured effects and what did not help: docs/api.md (Performance)
and benchmarks/results/serving.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

import anyio
import bentoml
from pydantic_core import to_json
from starlette.responses import JSONResponse, Response

from safetynet.config import get_settings, load_policy
from safetynet.db.engine import get_engine
from safetynet.db.migrate import migrate
from safetynet.db.wal import WalCheckpointer
from safetynet.serving.accept import limit_accepts
from safetynet.serving.audit import AuditLog, audit_entry
from safetynet.serving.batching import LoopGroupCommit, ScoreBatcher
from safetynet.serving.caseworker import app as caseworker_app
from safetynet.serving.features import FeatureSource, open_feature_source, rows_to_matrix
from safetynet.serving.keys import KeyCache, Principal
from safetynet.serving.lang import language
from safetynet.serving.model import ModelHolder
from safetynet.serving.schemas import (
    ExplainRequest,
    ExplainResponse,
    ReloadResponse,
    ScoreRequest,
    ScoreResponse,
)
from safetynet.serving.scoring import Batch, Scorer

log = logging.getLogger(__name__)
_settings = get_settings()
INLINE_ROWS = 32  # batches up to this size are scored on the event loop


class ApiError(Exception):
    """An error answered with `status` and a plain message (never a stack trace)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse({"error": self.message}, status_code=self.status, headers=headers)


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@bentoml.service(
    name="safetynet",
    workers=_settings.serve_workers,
    traffic={"timeout": 120},
    metrics={"enabled": True},
    # No trace exporter is configured, so OpenTelemetry spans on the hot endpoints were pure
    # cost: the ASGI tracing middleware took ~20% of a /score request's CPU at 16 connections
    # (py-spy). Excluded URLs pass straight through it; other routes are still traced.
    tracing={"excluded_urls": ["/score", "/explain"]},
    # The audit log records every scoring call; BentoML's per-request access log line only
    # adds cost on the hot path (enable with SAFETYNET_SERVE_ACCESS_LOG=true).
    logging={"access": {"enabled": _settings.serve_access_log}},
)
@bentoml.asgi_app(caseworker_app, path="/caseworker")  # the caseworker web page
class SafetyNet:
    """Scores households with the champion model and explains the scores."""

    def __init__(self) -> None:
        settings = get_settings()
        self.settings = settings
        migrate(settings)
        engine = get_engine(settings)
        # SQLite: checkpoints off the event loop (a checkpoint's fsync stalled every request)
        self.checkpointer = WalCheckpointer(engine) if engine.dialect.name == "sqlite" else None
        if self.checkpointer:
            self.checkpointer.start()
        self.keys = KeyCache(engine, ttl=settings.serve_key_cache_seconds)
        self.audit = AuditLog(engine)
        self.audit_commit = LoopGroupCommit(self.audit.write_many_inline)
        self.scorer = Scorer(load_policy(), reasons=settings.serve_reasons)
        self.batcher = ScoreBatcher(self.scorer)
        self.source: FeatureSource | None = open_feature_source(settings)
        self.models = ModelHolder(settings)
        self.models.watch(settings.serve_model_poll_seconds)
        self.batch_limit = settings.serve_batch_limit
        # Built by BentoML inside the worker's event loop, before the loop starts listening.
        if settings.serve_workers > 1:
            with contextlib.suppress(RuntimeError):  # no running loop (tests): nothing to do
                limit_accepts(asyncio.get_running_loop(), settings.serve_accepts_per_turn)
        # Move everything loaded so far (BentoML, MLflow, pandas, the model) out of the
        # collector's reach, so full collections do not walk it (docs/api.md, "What was done").
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.models.current is not None

    @bentoml.on_shutdown
    def _close(self) -> None:
        self.models.stop()
        self.audit.close()
        if self.checkpointer:
            self.checkpointer.stop()

    # --- helpers -------------------------------------------------------------------------
    def _principal(self, ctx: bentoml.Context) -> Principal:
        header = ctx.request.headers.get("authorization")
        if not header:
            raise ApiError(401, "missing API key: send the header 'Authorization: Bearer KEY'")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "malformed Authorization header: expected 'Bearer KEY'")
        principal = self.keys.authenticate(token.strip())
        if principal is None:
            raise ApiError(401, "unknown or revoked API key")
        return principal

    def _households(self, ids: list[str], features: list[str], who: Principal) -> Batch:
        if self.source is None:
            raise ApiError(503, "the online feature store is not available; send `records`")
        rows = self.source.get_many(ids)
        unknown = [hid for hid, row in zip(ids, rows, strict=True) if row is None]
        if unknown:
            raise ApiError(404, f"unknown household(s): {_listing(unknown)}")
        if who.role == "caseworker":
            denied = [hid for hid, row in zip(ids, rows, strict=True)
                      if not who.may_see(row.get("district"))]
            if denied:
                raise ApiError(403, "household(s) outside this key's districts: "
                               f"{_listing(denied)}")
        X = rows_to_matrix(rows, features)
        as_of = [None if r.get("as_of_date") is None else str(r["as_of_date"])[:10] for r in rows]
        extra_names = self.scorer_extra(features)
        extra = {
            name: rows_to_matrix(rows, [name])[:, 0] for name in extra_names
        }
        return Batch(list(ids), X, as_of, extra, rows)

    def scorer_extra(self, features: list[str]) -> list[str]:
        """Non-model fields the programme rules read (taken from the online store row)."""
        feats = set(features)
        return sorted({f for r in self.scorer.rules for f in r.features()} - feats)

    def _records(self, records: list[dict[str, Any]], features: list[str], who: Principal) -> Batch:
        if who.role == "caseworker":
            raise ApiError(403, "caseworker keys score households of their districts by "
                           "`household_ids`; `records` need a platform or admin key")
        want = set(features)
        for i, rec in enumerate(records):
            keys = set(rec)
            if keys != want:
                missing = sorted(want - keys)
                extra = sorted(keys - want)
                parts = []
                if missing:
                    parts.append(f"missing feature(s): {_listing(missing)}")
                if extra:
                    parts.append(f"unknown feature(s): {_listing(extra)}")
                raise ApiError(400, f"records[{i}]: " + "; ".join(parts))
        X = rows_to_matrix(records, features)
        ids = [f"record:{i}" for i in range(len(records))]
        return Batch(ids, X, [None] * len(records), {})

    async def _audit(self, endpoint: str, ids: list[str], who: Principal, bundle: Any,
                     status: int) -> None:
        entry = audit_entry(endpoint, ids, who.key_id, who.role, getattr(bundle, "name", None),
                            getattr(bundle, "version", None), status)
        try:
            if self.audit.inline:  # SQLite: a commit on the loop beats two thread hand-overs
                await self.audit_commit.write(entry)
            else:  # PostgreSQL: group commit in the writer thread, off the event loop
                await asyncio.wrap_future(self.audit.submit(entry))
        except Exception as exc:
            log.error("audit log write failed: %s", type(exc).__name__)
            raise ApiError(503, "the audit log is unavailable; request not served") from None

    async def _answered(self, endpoint: str, body: bytes, ids: list[str], who: Principal,
                        bundle: Any) -> Response:
        """The JSON response, after its audit row is written (answered means logged)."""
        await self._audit(endpoint, ids, who, bundle, 200)
        return Response(body, media_type="application/json")

    async def _refused(self, ctx: bentoml.Context, err: ApiError, endpoint: str,
                       ids: list[str], who: Principal | None, bundle: Any) -> Response:
        """The error response; a 403 or 404 to a known caller is audited too."""
        if who is not None and err.status in (403, 404):
            await self._audit(endpoint, ids, who, bundle, err.status)
        ctx.response.status_code = err.status  # BentoML copies it onto the response
        return err.response()

    async def _run(self, n: int, fn: Any, *args: Any) -> Any:
        if n <= INLINE_ROWS:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args)

    # --- endpoints -----------------------------------------------------------------------
    @bentoml.api(route="/score", input_spec=ScoreRequest, output_spec=ScoreResponse)
    async def score(
        self,
        household_ids: list[str] | None = None,
        records: list[dict[str, float | None]] | None = None,
        ctx: bentoml.Context = None,  # type: ignore[assignment]
    ) -> ScoreResponse:
        """Risk score, tier, reasons, indicators and matching programmes per household."""
        who: Principal | None = None
        bundle = self.models.current  # pinned for the whole request
        ids: list[str] = []
        try:
            who = self._principal(ctx)
            n = len(household_ids if household_ids is not None else records or [])
            if n > self.batch_limit:
                raise ApiError(413, f"batch of {n} exceeds the limit of {self.batch_limit}")
            features = list(bundle.features)
            lang = language(ctx.request.headers.get("accept-language"))
            if household_ids is not None:
                ids = list(household_ids)
                batch = await self._run(n, self._households, ids, features, who)
            else:
                batch = self._records(records or [], features, who)
                ids = batch.ids
            if n <= INLINE_ROWS:  # coalesced with other small requests in flight
                results = await self.batcher.score(bundle, batch, lang)
                body = _dump(ScoreResponse, {"results": results}, False)
            else:
                body = await anyio.to_thread.run_sync(_score_json, self.scorer, bundle, batch,
                                                      lang)
            return await self._answered("/score", body, ids, who, bundle)  # type: ignore[return-value]
        except ApiError as err:
            return await self._refused(ctx, err, "/score", ids, who, bundle)  # type: ignore[return-value]

    @bentoml.api(route="/explain", input_spec=ExplainRequest, output_spec=ExplainResponse)
    async def explain(
        self,
        household_id: str | None = None,
        record: dict[str, float | None] | None = None,
        ctx: bentoml.Context = None,  # type: ignore[assignment]
    ) -> ExplainResponse:
        """Every feature's TreeSHAP contribution (log-odds) and the base value, one household."""
        who: Principal | None = None
        bundle = self.models.current
        ids: list[str] = []
        try:
            who = self._principal(ctx)
            features = list(bundle.features)
            if household_id is not None:
                ids = [household_id]
                batch = self._households(ids, features, who)
            else:
                batch = self._records([record or {}], features, who)
                ids = batch.ids
            out = self.scorer.explain(bundle, batch)
            body = _dump(ExplainResponse, out)
            return await self._answered("/explain", body, ids, who, bundle)  # type: ignore[return-value]
        except ApiError as err:
            return await self._refused(ctx, err, "/explain", ids, who, bundle)  # type: ignore[return-value]

    @bentoml.api(route="/reload", output_spec=ReloadResponse)
    async def reload(self, ctx: bentoml.Context = None) -> ReloadResponse:  # type: ignore[assignment]
        """Admin: load the model the alias points at now, if it changed (in-flight requests
        finish on the old one)."""
        try:
            who = self._principal(ctx)
            if who.role != "admin":
                raise ApiError(403, "reloading the model needs an admin key")
            try:
                old, new = await anyio.to_thread.run_sync(self.models.reload)
            except Exception as exc:
                log.exception("reload failed")
                raise ApiError(503, f"reload failed, still serving version "
                               f"{self.models.current.version}: {type(exc).__name__}") from None
            return ReloadResponse(old_version=old, new_version=new, changed=old != new)
        except ApiError as err:
            ctx.response.status_code = err.status  # BentoML copies it onto the response
            return err.response()  # type: ignore[return-value]


def _score_json(scorer: Scorer, bundle: Any, batch: Batch, lang: str) -> bytes:
    """The /score body for a large batch, scored and serialised in one worker thread."""
    return _dump(ScoreResponse, {"results": scorer.score(bundle, batch, lang)}, False)


def _dump(model: type, data: dict[str, Any], validate: bool = True) -> bytes:
    """Serialise a response body built by the scorer.

    `validate=False` (/score) skips the per-row pydantic re-validation and encodes the plain
    dicts with pydantic-core's JSON encoder (cost: docs/api.md, "What was done"). The output
    is identical (a test checks /score bodies against ScoreResponse); /explain (one row)
    still validates.
    """
    if validate:
        return model.model_validate(data).model_dump_json().encode()
    return to_json(data)


