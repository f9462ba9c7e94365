"""The caseworker web page: a Starlette app with server-rendered Jinja2 templates.

Mounted into the BentoML service at `/caseworker` (`serving/service.py`), where it shares
the service's key cache, audit log, scorer, feature source and served model: the running
`SafetyNet` instance is the page's backend. Tests pass their own backend to `create_app`.

Access rules: only caseworker and admin keys log in; a caseworker sees only households of
their districts (another district's household answers a 403 page); every household view
and every worklist view is written to the audit log before the page is answered, like an
/explain call. Forms carry a CSRF token bound to the session; outcome submissions carry a
per-render submission id, so a double submit stores one outcome.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from safetynet.config import Settings
from safetynet.db.engine import get_engine
from safetynet.db.identity import identities
from safetynet.features.indicators import INDICATORS_BY_ID
from safetynet.serving.audit import AuditLog, audit_entry
from safetynet.serving.caseworker import data
from safetynet.serving.caseworker.charts import TIER_COLOURS, history_svg, waterfall_svg
from safetynet.serving.caseworker.i18n import LANG_COOKIE, LANGS, pick_language, translator
from safetynet.serving.caseworker.session import (
    COOKIE,
    ROLES,
    Session,
    SessionCodec,
    principal_by_id,
    session_secret,
)
from safetynet.serving.features import FeatureSource
from safetynet.serving.keys import KeyCache, Principal
from safetynet.serving.scoring import Scorer

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
WORKLIST_REASONS = 3
HOUSEHOLD_REASONS = 5
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages carry names and addresses
}


class Backend(Protocol):
    """What the page needs from the service (the `SafetyNet` instance provides all of it)."""

    settings: Settings
    keys: KeyCache
    audit: AuditLog
    scorer: Scorer
    source: FeatureSource | None
    models: Any  # `.current`: the served bundle


class PageError(Exception):
    """Answered with the error page: `status` and a catalogue message key."""

    def __init__(self, status: int, message_key: str) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key


def _service_backend() -> Backend:
    import bentoml

    return bentoml.get_current_service()


def create_app(backend: Callable[[], Backend] = _service_backend) -> Starlette:
    """The caseworker ASGI app; `backend()` returns the live backend on each request."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    codecs: dict[int, SessionCodec] = {}

    def codec(b: Backend) -> SessionCodec:
        key = id(b.settings)
        if key not in codecs:
            codecs[key] = SessionCodec(session_secret(b.settings),
                                       b.settings.caseworker_session_hours * 3600)
        return codecs[key]

    # --- request helpers -----------------------------------------------------------------
    def lang_of(request: Request) -> str:
        return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                             request.headers.get("accept-language"))

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200,
               session: Session | None = None, who: Principal | None = None) -> Response:
        b = backend()
        lang = lang_of(request)
        other = "en" if lang == "zh" else "zh"
        context = {
            "t": translator(lang), "lang": lang, "base": base(request), "who": who,
            "csrf": codec(b).csrf_token(session) if session else None,
            "switch_url": str(request.url.include_query_params(lang=other)),
            "tier_colours": TIER_COLOURS, **ctx,
        }
        resp = templates.TemplateResponse(request, name, context, status_code=status)
        resp.headers.update(SECURITY_HEADERS)
        if request.query_params.get("lang") in LANGS:
            resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/",
                            secure=b.settings.caseworker_cookie_secure, samesite="strict")
        return resp

    def to_login(request: Request) -> Response:
        resp = RedirectResponse(f"{base(request)}/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def signed_in(request: Request) -> tuple[Session, Principal] | None:
        b = backend()
        session = codec(b).read(request.cookies.get(COOKIE))
        if session is None:
            return None
        engine = get_engine(b.settings)
        who = await anyio.to_thread.run_sync(principal_by_id, engine, session.key_id)
        if who is None or who.role not in ROLES:  # revoked since login
            return None
        return session, who

    async def audit(b: Backend, endpoint: str, keys: list[str], who: Principal,
                    status: int) -> None:
        bundle = b.models.current
        entry = audit_entry(endpoint, keys, who.key_id, who.role, getattr(bundle, "name", None),
                            str(getattr(bundle, "version", "")) or None, status)
        try:
            await asyncio.wrap_future(b.audit.submit(entry))
        except Exception as exc:
            log.error("audit log write failed: %s", type(exc).__name__)
            raise PageError(503, "server_error") from None

    def error_page(request: Request, err: PageError, auth: tuple[Session, Principal] | None
                   ) -> Response:
        session, who = auth if auth else (None, None)
        return render(request, "error.html", {"message_key": err.message_key,
                                               "status": err.status},
                      status=err.status, session=session, who=who)

    # --- pages ---------------------------------------------------------------------------
    async def login_page(request: Request) -> Response:
        if await signed_in(request):
            return RedirectResponse(f"{base(request)}/", status_code=303)
        return render(request, "login.html", {"error": None})

    async def login(request: Request) -> Response:
        b = backend()
        form = await request.form()
        token = str(form.get("api_key", "")).strip()
        who = await anyio.to_thread.run_sync(b.keys.authenticate, token) if token else None
        if who is None:
            return render(request, "login.html", {"error": "bad_key"}, status=401)
        if who.role not in ROLES:
            return render(request, "login.html", {"error": "wrong_role"}, status=403)
        _, cookie = codec(b).new(who.key_id)
        resp = RedirectResponse(f"{base(request)}/", status_code=303)
        resp.set_cookie(COOKIE, cookie, max_age=int(b.settings.caseworker_session_hours * 3600),
                        path="/", secure=b.settings.caseworker_cookie_secure, httponly=True,
                        samesite="strict")
        return resp

    async def logout(request: Request) -> Response:
        auth = await signed_in(request)
        form = await request.form()
        if auth and not codec(backend()).csrf_ok(auth[0], form.get("csrf")):
            return error_page(request, PageError(403, "csrf"), auth)
        return to_login(request)

    async def worklist(request: Request) -> Response:
        auth = await signed_in(request)
        if auth is None:
            return to_login(request)
        session, who = auth
        b = backend()
        try:
            ctx = await _worklist_context(b, who, lang_of(request))
            await audit(b, "/caseworker/worklist", ctx["keys"], who, 200)
        except PageError as err:
            return error_page(request, err, auth)
        return render(request, "worklist.html", ctx, session=session, who=who)

    async def household(request: Request) -> Response:
        auth = await signed_in(request)
        if auth is None:
            return to_login(request)
        session, who = auth
        key = request.path_params["key"]
        saved = request.query_params.get("saved")
        try:
            ctx = await _household_context(backend(), who, key, lang_of(request), audit_view=True)
        except PageError as err:
            return error_page(request, err, auth)
        ctx.update(saved=saved if saved in ("new", "dup") else None)
        return render(request, "household.html", ctx, session=session, who=who)

    async def record(request: Request) -> Response:
        auth = await signed_in(request)
        if auth is None:
            return to_login(request)
        session, who = auth
        b = backend()
        key = request.path_params["key"]
        form = await request.form()
        if not codec(b).csrf_ok(session, form.get("csrf")):
            return error_page(request, PageError(403, "csrf"), auth)
        engine = get_engine(b.settings)
        try:
            await _visible(b, who, key, audit_view=False)
        except PageError as err:
            return error_page(request, err, auth)
        from safetynet.db.feedback import FeedbackError, record_outcome

        item_id = await anyio.to_thread.run_sync(
            lambda: data.worklist_item_id(engine, data.latest_run_id(engine), key))
        payload = _outcome_payload(form, key, who, item_id)
        try:
            stored = await anyio.to_thread.run_sync(record_outcome, engine, payload)
        except FeedbackError as exc:
            try:
                ctx = await _household_context(b, who, key, lang_of(request), audit_view=False)
            except PageError as err:
                return error_page(request, err, auth)
            ctx.update(form_error=str(exc), form=payload, saved=None,
                       submission_id=payload["submission_id"] or ctx["submission_id"])
            return render(request, "household.html", ctx, status=400, session=session, who=who)
        state = "new" if stored.created else "dup"
        return RedirectResponse(f"{base(request)}/household/{key}?saved={state}#outcome",
                                status_code=303)

    # --- page data -----------------------------------------------------------------------
    async def _worklist_context(b: Backend, who: Principal, lang: str) -> dict[str, Any]:
        engine = get_engine(b.settings)
        bundle = b.models.current

        def load() -> dict[str, Any]:
            run_id = data.latest_run_id(engine)
            items = data.worklist_for(engine, who) if run_id else None
            if items is None or items.empty:
                return {"run_id": run_id, "items": [], "keys": []}
            keys = items["household_key"].astype(str).tolist()
            texts = b.scorer.texts(bundle.features)
            reasons = data.stored_reasons(engine, run_id, keys, WORKLIST_REASONS)
            live: dict[str, dict[str, Any]] = {}
            if b.source is not None:
                batch, _ = data.build_batch(b.scorer, b.source, keys, bundle.features)
                if batch.ids:
                    for r in b.scorer.score(bundle, batch, lang, k=0):
                        live[r["household_id"]] = r
            ids = identities(b.settings.identity_path, keys, _districts(who))
            rows = []
            for item in items.to_dict("records"):
                k = str(item["household_key"])
                rows.append({
                    **item, "reasons": [data.reason_text(r, texts, lang)
                                        for r in reasons.get(k, [])],
                    "indicators": _indicator_texts(live.get(k, {}).get("indicators", []), lang),
                    "programmes": [p["name"] for p in live.get(k, {}).get("programs", [])],
                    "identity": ids.get(k),
                })
            return {"run_id": run_id, "items": rows, "keys": keys}

        return await anyio.to_thread.run_sync(load)

    async def _visible(b: Backend, who: Principal, key: str, audit_view: bool) -> tuple:
        """The household's scoring batch and store row; 404/403 (audited on a view)."""
        if b.source is None:
            raise PageError(503, "server_error")
        batch, rows = await anyio.to_thread.run_sync(
            data.build_batch, b.scorer, b.source, [key], b.models.current.features)
        status = 404 if rows[0] is None else 200 if who.may_see(rows[0].get("district")) else 403
        if status != 200:
            if audit_view:
                await audit(b, "/caseworker/household", [key], who, status)
            raise PageError(status, "not_found" if status == 404 else "forbidden")
        return batch, rows

    async def _household_context(b: Backend, who: Principal, key: str, lang: str,
                                 audit_view: bool) -> dict[str, Any]:
        engine = get_engine(b.settings)
        bundle = b.models.current
        batch, rows = await _visible(b, who, key, audit_view)
        t = translator(lang)

        def load() -> dict[str, Any]:
            result = b.scorer.score(bundle, batch, lang, k=HOUSEHOLD_REASONS)[0]
            expl = b.scorer.explain(bundle, batch)
            texts = b.scorer.texts(bundle.features)
            nan = float("nan")

            def label(c: dict[str, Any]) -> str:
                v = nan if c["value"] is None else c["value"]
                return data.reason_text({"feature": c["feature"], "value": v}, texts, lang)

            chart = waterfall_svg(
                expl["base_value"], expl["contributions"], label,
                {"base": t("base_value"), "final": t("final_value"),
                 "other": t("other_features"), "title": t("explanation")})
            history = data.history_of(engine, key)
            run_id = data.latest_run_id(engine)
            return {
                "key": key, "row": rows[0], "result": result, "expl": expl, "chart": chart,
                "history": history,
                "history_chart": history_svg(history, b.scorer.thresholds, t("history"))
                if history else None,
                "outcomes": data.outcomes_of(engine, key),
                "identity": identities(b.settings.identity_path, [key],
                                       _districts(who)).get(key),
                "indicators": _indicator_texts(result["indicators"], lang),
                "item_id": data.worklist_item_id(engine, run_id, key),
                "programme_choices": [(r.programme_id, r.name_zh if lang == "zh" else r.name_en)
                                      for r in b.scorer.rules],
                "form_error": None, "form": {}, "submission_id": uuid.uuid4().hex,
                "today": datetime.now(UTC).date().isoformat(),
            }

        ctx = await anyio.to_thread.run_sync(load)
        from safetynet.db.feedback import DISAGREEMENT_CODES, HARDSHIP_TYPES, OUTCOMES

        ctx.update(outcome_choices=OUTCOMES, hardship_choices=HARDSHIP_TYPES,
                   code_choices=DISAGREEMENT_CODES)
        if audit_view:
            await audit(b, "/caseworker/household", [key], who, 200)
        return ctx

    async def not_found(request: Request, exc: HTTPException) -> Response:
        err = PageError(exc.status_code, "not_found" if exc.status_code == 404 else "error")
        return error_page(request, err, None)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("caseworker page failed: %s", type(exc).__name__)  # no names in logs
        return error_page(request, PageError(500, "server_error"), None)

    routes = [
        Route("/", worklist, name="worklist"),
        Route("/login", login_page, methods=["GET"], name="login_page"),
        Route("/login", login, methods=["POST"], name="login"),
        Route("/logout", logout, methods=["POST"], name="logout"),
        Route("/household/{key}", household, name="household"),
        Route("/household/{key}/outcome", record, methods=["POST"], name="record"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes,
                     exception_handlers={HTTPException: not_found, Exception: server_error})


def _districts(who: Principal) -> frozenset[str] | None:
    """Districts whose names and addresses the principal may read (None: all)."""
    return who.districts if who.role == "caseworker" else None


def _indicator_texts(found: list[dict[str, Any]], lang: str) -> list[str]:
    out = []
    for ind in found:
        spec = INDICATORS_BY_ID.get(ind["indicator_id"])
        text = (spec.description_zh if lang == "zh" else spec.description_en) if spec \
            else ind["indicator_id"]
        out.append(text)
    return out


def _outcome_payload(form: Any, key: str, who: Principal, item_id: str | None) -> dict[str, Any]:
    """The `VisitOutcome` fields from the posted form; the household, caseworker and worklist
    item come from the server, never from the form."""
    def text(name: str) -> str | None:
        value = str(form.get(name) or "").strip()
        return value or None

    disagrees = form.get("disagrees") == "1"
    return {
        "household_key": key,
        "visit_date": text("visit_date"),
        "caseworker_key_id": str(who.key_id),
        "outcome": text("outcome"),
        "hardship_type": text("hardship_type") if text("outcome") == "hardship_confirmed"
        else None,
        "programmes_referred": [str(p) for p in form.getlist("programmes_referred")],
        "programmes_enrolled": [str(p) for p in form.getlist("programmes_enrolled")],
        "disagrees_with_score": disagrees,
        "disagreement_code": text("disagreement_code") if disagrees else None,
        "disagreement_text": text("disagreement_text") if disagrees else None,
        "worklist_item_id": item_id,
        "submission_id": text("submission_id"),
    }
