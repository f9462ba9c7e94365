"""`/`: the latest run's worklist the caseworker may see, with stored reasons, live
indicators and programmes, and names from the identity vault (audited before it is shown)."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from safetynet.db.engine import get_engine
from safetynet.db.identity import identities
from safetynet.db.score_history import latest_run_id, stored_reasons
from safetynet.features.indicators import INDICATORS_BY_ID
from safetynet.serving.caseworker import data
from safetynet.serving.caseworker.page import Auth, Backend, Page, PageError, districts_of
from safetynet.serving.keys import Principal

WORKLIST_REASONS = 3


def indicator_texts(found: list[dict[str, Any]], lang: str) -> list[str]:
    """Descriptions of the indicators found, in `lang` (an unknown id stands as itself)."""
    out = []
    for ind in found:
        spec = INDICATORS_BY_ID.get(ind["indicator_id"])
        text = (spec.description_zh if lang == "zh" else spec.description_en) if spec \
            else ind["indicator_id"]
        out.append(text)
    return out


class WorklistPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def routes(self) -> list[Route]:
        return [Route("/", self.page.login_required(self.show), name="worklist")]

    async def show(self, request: Request, auth: Auth) -> Response:
        session, who = auth
        b = self.page.backend()
        try:
            ctx = await anyio.to_thread.run_sync(
                worklist_context, b, who, self.page.lang_of(request))
            await self.page.audit(b, "/caseworker/worklist", ctx["keys"], who, 200)
        except PageError as err:
            return self.page.error_page(request, err, auth)
        return self.page.render(request, "worklist.html", ctx, session=session, who=who)


def worklist_context(b: Backend, who: Principal, lang: str) -> dict[str, Any]:
    """Template context: run_id, the rows to show, and the household keys (for the audit)."""
    engine = get_engine(b.settings)
    bundle = b.models.current
    run_id = latest_run_id(engine)
    items = data.worklist_for(engine, who) if run_id else None
    if items is None or items.empty:
        return {"run_id": run_id, "items": [], "keys": []}
    keys = items["household_key"].astype(str).tolist()
    texts = b.scorer.texts(bundle.features)
    reasons = stored_reasons(engine, run_id, keys, WORKLIST_REASONS)
    live = _live_results(b, keys, lang)
    ids = identities(b.settings.identity_path, keys, districts_of(who))
    rows = []
    for item in items.to_dict("records"):
        k = str(item["household_key"])
        rows.append({
            **item, "reasons": [data.reason_text(r, texts, lang) for r in reasons.get(k, [])],
            "indicators": indicator_texts(live.get(k, {}).get("indicators", []), lang),
            "programmes": [p["name"] for p in live.get(k, {}).get("programs", [])],
            "identity": ids.get(k),
        })
    return {"run_id": run_id, "items": rows, "keys": keys}


def _live_results(b: Backend, keys: list[str], lang: str) -> dict[str, dict[str, Any]]:
    """The scorer's result per household from the online store (no reasons), by key."""
    if b.source is None:
        return {}
    bundle = b.models.current
    batch, _ = data.build_batch(b.scorer, b.source, keys, bundle.features)
    if not batch.ids:
        return {}
    return {r["household_id"]: r for r in b.scorer.score(bundle, batch, lang, k=0)}
