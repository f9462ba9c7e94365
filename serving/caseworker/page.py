"""What every caseworker page shares: the backend it reads, sessions, rendering, the audit
write and the error page.

Access rules (docs/caseworker.md): only caseworker and admin keys log in; every household and
worklist view is written to the audit log before the page is answered; forms carry a CSRF
token bound to the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from safetynet.config import Settings
from safetynet.db.engine import get_engine
from safetynet.serving.audit import AuditLog, audit_entry
from safetynet.serving.caseworker.charts import TIER_COLOURS
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
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages carry names and addresses
}

Auth = tuple[Session, Principal]


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


def districts_of(who: Principal) -> frozenset[str] | None:
    """Districts whose names and addresses the principal may read (None: all)."""
    return who.districts if who.role == "caseworker" else None


class Page:
    """The request helpers of every page; `backend()` returns the live backend each call."""

    def __init__(self, backend: Callable[[], Backend]) -> None:
        self.backend = backend
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self._codecs: dict[int, SessionCodec] = {}

    def codec(self, b: Backend) -> SessionCodec:
        key = id(b.settings)
        if key not in self._codecs:
            self._codecs[key] = SessionCodec(session_secret(b.settings),
                                             b.settings.caseworker_session_hours * 3600)
        return self._codecs[key]

    @staticmethod
    def lang_of(request: Request) -> str:
        return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                             request.headers.get("accept-language"))

    @staticmethod
    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def render(self, request: Request, name: str, ctx: dict[str, Any], status: int = 200,
               session: Session | None = None, who: Principal | None = None) -> Response:
        b = self.backend()
        lang = self.lang_of(request)
        other = "en" if lang == "zh" else "zh"
        context = {
            "t": translator(lang), "lang": lang, "base": self.base(request), "who": who,
            "csrf": self.codec(b).csrf_token(session) if session else None,
            "switch_url": str(request.url.include_query_params(lang=other)),
            "tier_colours": TIER_COLOURS, **ctx,
        }
        resp = self.templates.TemplateResponse(request, name, context, status_code=status)
        resp.headers.update(SECURITY_HEADERS)
        if request.query_params.get("lang") in LANGS:
            resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/",
                            secure=b.settings.caseworker_cookie_secure, samesite="strict")
        return resp

    def redirect(self, request: Request, path: str) -> RedirectResponse:
        """303 to `path` below the page's mount point."""
        return RedirectResponse(f"{self.base(request)}{path}", status_code=303)

    def to_login(self, request: Request) -> Response:
        resp = self.redirect(request, "/login")
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def signed_in(self, request: Request) -> Auth | None:
        """The session and its principal; None without a valid session or when the key has
        been revoked (or lost its role) since login."""
        b = self.backend()
        session = self.codec(b).read(request.cookies.get(COOKIE))
        if session is None:
            return None
        engine = get_engine(b.settings)
        who = await anyio.to_thread.run_sync(principal_by_id, engine, session.key_id)
        if who is None or who.role not in ROLES:
            return None
        return session, who

    def login_required(self, handler: Callable[[Request, Auth], Awaitable[Response]]
                       ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint that sends a request without a valid session to the login page and
        calls `handler(request, (session, principal))` otherwise."""
        async def endpoint(request: Request) -> Response:
            auth = await self.signed_in(request)
            if auth is None:
                return self.to_login(request)
            return await handler(request, auth)

        return endpoint

    async def audit(self, b: Backend, endpoint: str, keys: list[str], who: Principal,
                    status: int) -> None:
        """Write the view to the audit log; a failed write is a 503 (the page is not shown)."""
        bundle = b.models.current
        entry = audit_entry(endpoint, keys, who.key_id, who.role, getattr(bundle, "name", None),
                            str(getattr(bundle, "version", "")) or None, status)
        try:
            await asyncio.wrap_future(b.audit.submit(entry))
        except Exception as exc:
            log.error("audit log write failed: %s", type(exc).__name__)
            raise PageError(503, "server_error") from None

    def error_page(self, request: Request, err: PageError, auth: Auth | None) -> Response:
        session, who = auth if auth else (None, None)
        return self.render(request, "error.html", {"message_key": err.message_key,
                                                    "status": err.status},
                           status=err.status, session=session, who=who)
