"""Roll a lane back from its page: the same engine path as `setpoint rollback`.

The lane page lists the lane's known-good states and links here. The form names the lane,
the generation to bring back (or the newest earlier one that differs), a reason (required:
it is the audit record's) and the operator's token. The POST writes the rollback as a new
desired generation, as the operator (`operator:<name>`), computes its plan and sends the
browser to that plan, whose page offers **Apply** as for any plan: a rollback changes
nothing outside until someone applies it.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reconciler.core.known_good import rollback
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan, lane_key
from reconciler.errors import RollbackRefused, UnknownLane
from reconciler.records import known_good
from reconciler.records.operator_tokens import OperatorIdentity
from reconciler.web import guard
from reconciler.web.applying import TOO_LARGE, form_refusal, not_done_page
from reconciler.web.site import Reader, ReviewSite
from reconciler.web.templating import Pages


def rollback_purpose(lane: str) -> str:
    return f"rollback:{lane}"


class RollbackPages:
    def __init__(self, site: ReviewSite, pages: Pages) -> None:
        self.site, self.pages = site, pages

    def add_routes(self, router: APIRouter, reader: Reader) -> None:
        router.add_api_route(
            "/rollback/{kind}/{name:path}",
            self.show_form,
            dependencies=[Depends(reader)],
            include_in_schema=False,
        )
        router.add_api_route(
            "/rollback/{kind}/{name:path}",
            self.roll_back,
            methods=["POST"],
            include_in_schema=False,
        )

    def show_form(self, request: Request, kind: str, name: str) -> Response:
        key = lane_key(kind, name)
        states = known_good.history(self.site.database, key)
        if not states:
            return not_done_page(request, self.pages, 404, f"{key} has no known-good state yet")
        nonce, new = guard.form_nonce(request)
        token = guard.form_token(self.site.form_key, nonce, rollback_purpose(key))
        response = self.pages.respond(
            request,
            "rollback.html",
            title=f"Roll {key} back?",
            lane=key,
            states=states,
            form_token=token,
        )
        if new:
            secure = self.site.secure_cookies
            guard.set_cookie(response, guard.FORM_COOKIE, nonce, max_age=3600, secure=secure)
        return response

    async def roll_back(self, request: Request, kind: str, name: str) -> Response:
        key = lane_key(kind, name)
        form = await guard.read_form(request)
        if form is None:
            return not_done_page(request, self.pages, 413, TOO_LARGE)
        operator = await form_refusal(self.site, request, form, rollback_purpose(key))
        if isinstance(operator, str):
            return not_done_page(request, self.pages, 403, operator)
        reason = form.get("reason", "").strip()[:500]
        if not reason:
            return not_done_page(request, self.pages, 400, "a rollback needs a reason")
        generation = form.get("generation", "")
        to = int(generation) if generation.isdigit() and len(generation) < 10 else None
        try:
            plan = await self._write(key, operator, reason, to)
        except (RollbackRefused, UnknownLane) as exc:
            return not_done_page(request, self.pages, 409, str(exc))
        return RedirectResponse(f"{self.pages.prefix}/plans/{quote(plan.plan_id)}", 303)

    async def _write(
        self, lane: str, operator: OperatorIdentity, reason: str, to: int | None
    ) -> Plan:
        async with self.site.open_runtime() as runtime:
            as_operator = dataclasses.replace(runtime, actor=operator.actor)
            rolled = await rollback(as_operator, lane, reason=reason, to_generation=to)
            return await compute_plan(as_operator, [rolled.lane])
