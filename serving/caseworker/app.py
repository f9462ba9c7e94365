"""The caseworker web page: a Starlette app with server-rendered Jinja2 templates.

Mounted into the BentoML service at `/caseworker` (`serving/service.py`), where it shares
the service's key cache, audit log, scorer, feature source and served model: the running
`SafetyNet` instance is the page's backend. Tests pass their own backend to `create_app`.

One module per page: `login_page` (login, logout), `worklist_page` (`/`), `household_page`
(`/household/{key}` and its outcome form); what they share is in `page`. Storage is read
through `safetynet.db` (score history, feedback, identity vault) and `data` (worklist items,
scoring rows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from safetynet.serving.caseworker.household_page import HouseholdPage
from safetynet.serving.caseworker.login_page import LoginPage
from safetynet.serving.caseworker.page import HERE, Backend, Page, PageError
from safetynet.serving.caseworker.worklist_page import WorklistPage

log = logging.getLogger(__name__)


def _service_backend() -> Backend:
    # bentoml is imported only when the page first answers inside the service: tests that
    # build the app with their own backend do not pay its import (seconds)
    import bentoml

    return bentoml.get_current_service()


def create_app(backend: Callable[[], Backend] = _service_backend) -> Starlette:
    """The caseworker ASGI app; `backend()` returns the live backend on each request."""
    page = Page(backend)

    async def not_found(request: Request, exc: HTTPException) -> Response:
        err = PageError(exc.status_code, "not_found" if exc.status_code == 404 else "error")
        return page.error_page(request, err, None)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("caseworker page failed: %s", type(exc).__name__)  # no names in logs
        return page.error_page(request, PageError(500, "server_error"), None)

    routes = [
        *WorklistPage(page).routes(),
        *LoginPage(page).routes(),
        *HouseholdPage(page).routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes,
                     exception_handlers={HTTPException: not_found, Exception: server_error})
