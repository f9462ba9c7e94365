"""`/household/{key}`: one household's score, reasons, history, indicators and recorded
visits, with the visit-outcome form (`POST /household/{key}/outcome`).

A caseworker sees only households of their districts (another district's household answers a
403 page); every view is audited before it is answered. An outcome form carries a per-render
submission id, so a double submit stores one outcome.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from safetynet.db.engine import get_engine
from safetynet.db.feedback import (
    DISAGREEMENT_CODES,
    HARDSHIP_TYPES,
    OUTCOMES,
    FeedbackError,
    outcomes_of,
    record_outcome,
)
from safetynet.db.identity import identities
from safetynet.db.score_history import history_of, latest_run_id, worklist_item_id
from safetynet.serving.caseworker import data
from safetynet.serving.caseworker.charts import history_svg, waterfall_svg
from safetynet.serving.caseworker.i18n import translator
from safetynet.serving.caseworker.page import Auth, Backend, Page, PageError, districts_of
from safetynet.serving.caseworker.worklist_page import indicator_texts
from safetynet.serving.keys import Principal
from safetynet.serving.scoring import Batch

HOUSEHOLD_REASONS = 5
VIEW = "/caseworker/household"  # the audit log's endpoint for a household view


class HouseholdPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def routes(self) -> list[Route]:
        return [Route("/household/{key}", self.page.login_required(self.show), name="household"),
                Route("/household/{key}/outcome", self.page.login_required(self.record),
                      methods=["POST"], name="record")]

    async def show(self, request: Request, auth: Auth) -> Response:
        session, who = auth
        key = request.path_params["key"]
        saved = request.query_params.get("saved")
        try:
            ctx = await self.context(self.page.backend(), who, key, self.page.lang_of(request),
                                     audit_view=True)
        except PageError as err:
            return self.page.error_page(request, err, auth)
        ctx.update(saved=saved if saved in ("new", "dup") else None)
        return self.page.render(request, "household.html", ctx, session=session, who=who)

    async def record(self, request: Request, auth: Auth) -> Response:
        session, who = auth
        b = self.page.backend()
        key = request.path_params["key"]
        form = await request.form()
        if not self.page.codec(b).csrf_ok(session, form.get("csrf")):
            return self.page.error_page(request, PageError(403, "csrf"), auth)
        engine = get_engine(b.settings)
        try:
            await self.visible(b, who, key, audit_view=False)
        except PageError as err:
            return self.page.error_page(request, err, auth)
        item_id = await anyio.to_thread.run_sync(
            lambda: worklist_item_id(engine, latest_run_id(engine), key))
        payload = outcome_payload(form, key, who, item_id)
        try:
            stored = await anyio.to_thread.run_sync(record_outcome, engine, payload)
        except FeedbackError as exc:
            return await self._form_error(request, auth, key, payload, str(exc))
        state = "new" if stored.created else "dup"
        return self.page.redirect(request, f"/household/{key}?saved={state}#outcome")

    async def _form_error(self, request: Request, auth: Auth, key: str,
                          payload: dict[str, Any], message: str) -> Response:
        """The household page again (400) with the rejected form and its message."""
        session, who = auth
        try:
            ctx = await self.context(self.page.backend(), who, key,
                                     self.page.lang_of(request), audit_view=False)
        except PageError as err:
            return self.page.error_page(request, err, auth)
        ctx.update(form_error=message, form=payload, saved=None,
                   submission_id=payload["submission_id"] or ctx["submission_id"])
        return self.page.render(request, "household.html", ctx, status=400, session=session,
                                who=who)

    async def visible(self, b: Backend, who: Principal, key: str, audit_view: bool
                      ) -> tuple[Batch, list[dict[str, Any] | None]]:
        """The household's scoring batch and store row; 404/403 (audited on a view)."""
        if b.source is None:
            raise PageError(503, "server_error")
        batch, rows = await anyio.to_thread.run_sync(
            data.build_batch, b.scorer, b.source, [key], b.models.current.features)
        status = 404 if rows[0] is None else 200 if who.may_see(rows[0].get("district")) else 403
        if status != 200:
            if audit_view:
                await self.page.audit(b, VIEW, [key], who, status)
            raise PageError(status, "not_found" if status == 404 else "forbidden")
        return batch, rows

    async def context(self, b: Backend, who: Principal, key: str, lang: str,
                      audit_view: bool) -> dict[str, Any]:
        """Template context of the household page; the view is audited when `audit_view`."""
        batch, rows = await self.visible(b, who, key, audit_view)
        ctx = await anyio.to_thread.run_sync(household_context, b, who, key, lang, batch, rows)
        ctx.update(outcome_choices=OUTCOMES, hardship_choices=HARDSHIP_TYPES,
                   code_choices=DISAGREEMENT_CODES)
        if audit_view:
            await self.page.audit(b, VIEW, [key], who, 200)
        return ctx


def household_context(b: Backend, who: Principal, key: str, lang: str, batch: Batch,
                      rows: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Score, explanation chart, score history, visits, identity and form defaults."""
    engine = get_engine(b.settings)
    bundle = b.models.current
    t = translator(lang)
    result = b.scorer.score(bundle, batch, lang, k=HOUSEHOLD_REASONS)[0]
    expl = b.scorer.explain(bundle, batch)
    texts = b.scorer.texts(bundle.features)

    def label(c: dict[str, Any]) -> str:
        v = float("nan") if c["value"] is None else c["value"]
        return data.reason_text({"feature": c["feature"], "value": v}, texts, lang)

    chart = waterfall_svg(
        expl["base_value"], expl["contributions"], label,
        {"base": t("base_value"), "final": t("final_value"),
         "other": t("other_features"), "title": t("explanation")})
    history = history_of(engine, key)
    return {
        "key": key, "row": rows[0], "result": result, "expl": expl, "chart": chart,
        "history": history,
        "history_chart": history_svg(history, b.scorer.thresholds, t("history"))
        if history else None,
        "outcomes": outcomes_of(engine, key),
        "identity": identities(b.settings.identity_path, [key], districts_of(who)).get(key),
        "indicators": indicator_texts(result["indicators"], lang),
        "item_id": worklist_item_id(engine, latest_run_id(engine), key),
        "programme_choices": [(r.programme_id, r.name_zh if lang == "zh" else r.name_en)
                              for r in b.scorer.rules],
        "form_error": None, "form": {}, "submission_id": uuid.uuid4().hex,
        "today": datetime.now(UTC).date().isoformat(),
    }


def outcome_payload(form: Any, key: str, who: Principal, item_id: str | None) -> dict[str, Any]:
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
