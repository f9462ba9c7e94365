"""`/login` and `/logout`: an API key of role caseworker or admin opens a signed session."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from safetynet.serving.caseworker.page import Page, PageError
from safetynet.serving.caseworker.session import COOKIE, ROLES


class LoginPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def routes(self) -> list[Route]:
        return [Route("/login", self.show, methods=["GET"], name="login_page"),
                Route("/login", self.login, methods=["POST"], name="login"),
                Route("/logout", self.logout, methods=["POST"], name="logout")]

    async def show(self, request: Request) -> Response:
        if await self.page.signed_in(request):
            return self.page.redirect(request, "/")
        return self.page.render(request, "login.html", {"error": None})

    async def login(self, request: Request) -> Response:
        page, b = self.page, self.page.backend()
        form = await request.form()
        token = str(form.get("api_key", "")).strip()
        who = await anyio.to_thread.run_sync(b.keys.authenticate, token) if token else None
        if who is None:
            return page.render(request, "login.html", {"error": "bad_key"}, status=401)
        if who.role not in ROLES:
            return page.render(request, "login.html", {"error": "wrong_role"}, status=403)
        _, cookie = page.codec(b).new(who.key_id)
        resp = page.redirect(request, "/")
        resp.set_cookie(COOKIE, cookie, max_age=int(b.settings.caseworker_session_hours * 3600),
                        path="/", secure=b.settings.caseworker_cookie_secure, httponly=True,
                        samesite="strict")
        return resp

    async def logout(self, request: Request) -> Response:
        auth = await self.page.signed_in(request)
        form = await request.form()
        if auth and not self.page.codec(self.page.backend()).csrf_ok(auth[0], form.get("csrf")):
            return self.page.error_page(request, PageError(403, "csrf"), auth)
        return self.page.to_login(request)
