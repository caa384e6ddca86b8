"""Apply from the page, and signing in: the only routes that change anything.

An apply goes: the plan page's link, a confirmation that names the plan id, its digest and
how many destructive actions it has, then a POST carrying the operator's token, the form
token (bound to this plan) and the digest confirmed. The apply itself is the engine's own
`apply_plan`, the path `setpoint apply` takes, run as the operator (`operator:<name>`), so
a stale, blocked or expired plan is refused with the same message and every apply and
refusal is audited under the operator's name. A token that is not accepted changes nothing
and is logged without the token; it is not audited, so anyone who reaches the page cannot
fill the trail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.errors import PlanNotFound
from reconciler.presentation.failures import describe
from reconciler.records.database import in_thread
from reconciler.records.operator_tokens import OperatorIdentity
from reconciler.web import guard, readouts
from reconciler.web.operators import end_session, open_session, verify_token
from reconciler.web.site import Reader, ReviewSite
from reconciler.web.templating import Pages

log = logging.getLogger("setpoint.web")

SIGN_IN = "sign-in"
TOO_LARGE = "the form is larger than any form this site makes"


def apply_purpose(plan_id: str) -> str:
    return f"apply:{plan_id}"


class ApplyPages:
    """Confirmation, apply, sign-in and sign-out, each a method; `add_routes` adds them."""

    def __init__(self, site: ReviewSite, pages: Pages, running: RunningApplies) -> None:
        self.site, self.pages, self.running = site, pages, running

    def add_routes(self, router: APIRouter, reader: Reader) -> None:
        router.add_api_route(
            "/plans/{plan_id}/apply",
            self.show_confirmation,
            dependencies=[Depends(reader)],
            include_in_schema=False,
        )
        router.add_api_route(
            "/plans/{plan_id}/apply",
            self.apply_from_form,
            methods=["POST"],
            include_in_schema=False,
        )
        router.add_api_route("/sign-in", self.sign_in_form, include_in_schema=False)
        router.add_api_route("/sign-in", self.sign_in, methods=["POST"], include_in_schema=False)
        router.add_api_route("/sign-out", self.sign_out, methods=["POST"], include_in_schema=False)

    def _with_form(self, request: Request, name: str, purpose: str, **context: Any) -> Response:
        """A page holding a form for `purpose`, with its form token (and cookie if new)."""
        nonce, new = guard.form_nonce(request)
        token = guard.form_token(self.site.form_key, nonce, purpose)
        response = self.pages.respond(request, name, form_token=token, **context)
        if new:
            secure = self.site.secure_cookies
            guard.set_cookie(response, guard.FORM_COOKIE, nonce, max_age=3600, secure=secure)
        return response

    def show_confirmation(self, request: Request, plan_id: str) -> Response:
        try:
            page = readouts.plan_page(self.site.database, plan_id, self.site.clock())
        except PlanNotFound:
            return not_done_page(request, self.pages, 404, f"no stored plan {plan_id}")
        return self._with_form(
            request, "confirm.html", apply_purpose(plan_id), title=f"Apply {plan_id}?", page=page
        )

    async def apply_from_form(self, request: Request, plan_id: str) -> Response:
        form = await guard.read_form(request)
        if form is None:
            return not_done_page(request, self.pages, 413, TOO_LARGE)
        operator = await form_refusal(self.site, request, form, apply_purpose(plan_id))
        if isinstance(operator, str):
            return not_done_page(request, self.pages, 403, operator)
        return await _apply_confirmed(
            self.site, self.pages, request, plan_id, form, operator, self.running
        )

    def sign_in_form(self, request: Request, next: str = "") -> Response:
        target = guard.safe_next(next, f"{self.pages.prefix}/lanes")
        return self._with_form(request, "sign_in.html", SIGN_IN, title="Sign in", next=target)

    async def sign_in(self, request: Request) -> Response:
        form = await guard.read_form(request)
        if form is None:
            return not_done_page(request, self.pages, 413, TOO_LARGE)
        operator = await form_refusal(self.site, request, form, SIGN_IN)
        if isinstance(operator, str):
            return not_done_page(request, self.pages, 403, operator)
        target = guard.safe_next(form.get("next"), f"{self.pages.prefix}/lanes")
        response = RedirectResponse(target, status_code=303)
        cookie = await in_thread(open_session, self.site, operator)
        secure = self.site.secure_cookies
        guard.set_cookie(
            response, guard.SESSION_COOKIE, cookie, guard.SESSION_SECONDS, secure=secure
        )
        return response

    async def sign_out(self, request: Request) -> Response:
        """Ends the session on the server too: a copy of the cookie signs no one in."""
        await in_thread(end_session, self.site, request)
        response = RedirectResponse(f"{self.pages.prefix}/sign-in", status_code=303)
        response.delete_cookie(
            guard.SESSION_COOKIE,
            path="/",
            secure=self.site.secure_cookies,
            httponly=True,
            samesite="strict",
        )
        return response


async def form_refusal(
    site: ReviewSite, request: Request, form: dict[str, str], purpose: str
) -> str | OperatorIdentity:
    """The operator the form's token names, or why the form is refused."""
    if not guard.form_is_genuine(site.form_key, request, purpose, form.get("form_token", "")):
        return "this form was not made by this site for this plan, or it expired: reload the page"
    identity = await in_thread(verify_token, site.database, form.get("token", ""))
    if identity is None:
        log.warning("review page: an operator token was not accepted (%s)", purpose)
        return "the operator token was not accepted (unknown, revoked or mistyped)"
    return identity


class RunningApplies:
    """Applies started from the pages, each a task of the server's event loop rather than of
    the request that asked: a quick one is answered at once (its result or its refusal); a
    longer one runs on after the browser has been sent to the plan, which reloads itself
    while the apply runs (DESIGN: long work never holds an HTTP request open). A server that
    stops mid-apply leaves the plan to crash recovery, as any dead worker does."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[ApplyResult | str]] = {}  # held, so none is lost

    def begin(
        self, plan_id: str, work: Coroutine[Any, Any, ApplyResult | str]
    ) -> asyncio.Task[ApplyResult | str]:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks[plan_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(plan_id, None))
        return task

    def underway(self, plan_id: str) -> bool:
        """Is this process applying the plan (it may not have claimed it yet)?"""
        return plan_id in self.tasks


async def _apply_confirmed(
    site: ReviewSite,
    pages: Pages,
    request: Request,
    plan_id: str,
    form: dict[str, str],
    operator: OperatorIdentity,
    running: RunningApplies,
) -> Response:
    try:
        page = await in_thread(readouts.plan_page, site.database, plan_id)
    except PlanNotFound:
        return not_done_page(request, pages, 404, f"no stored plan {plan_id}")
    if form.get("digest") != page.plan.digest:
        return not_done_page(request, pages, 409, f"plan {plan_id} is not the plan you confirmed")
    allow_destroy = _count(form.get("allow_destroy", "0"))
    reason = form.get("reason", "").strip()[:500] or None
    task = running.begin(plan_id, _run_apply(site, plan_id, allow_destroy, operator, reason))
    done, _ = await asyncio.wait({task}, timeout=site.apply_wait_seconds)
    if task not in done:
        return RedirectResponse(f"{pages.prefix}/plans/{quote(plan_id)}", status_code=303)
    outcome = task.result()
    if isinstance(outcome, str):
        return not_done_page(request, pages, 502, outcome)
    return _result_page(request, pages, outcome, operator)


async def _run_apply(
    site: ReviewSite,
    plan_id: str,
    allow_destroy: int,
    operator: OperatorIdentity,
    reason: str | None,
) -> ApplyResult | str:
    """The engine's apply as the operator: its result, or why it could not start."""
    try:
        async with site.open_runtime() as runtime:
            as_operator = dataclasses.replace(runtime, actor=operator.actor)
            result = await apply_plan(
                as_operator, plan_id, allow_destroy=allow_destroy, reason=reason
            )
    except Exception as exc:
        # The one line the CLI prints too, for a failure an operator can act on (a database
        # or provider error, say); anything else is a bug and raises.
        message = describe(exc, lambda: site.database.url.render_as_string())
        if message is None:
            raise
        return f"plan {plan_id} was not applied: {message}"
    log.info("review page: plan %s %s by %s", plan_id, result.status, operator.actor)
    return result


def _result_page(
    request: Request, pages: Pages, result: ApplyResult, operator: OperatorIdentity
) -> Response:
    return pages.respond(
        request,
        "applied.html",
        200 if result.refusal is None else 409,
        title=f"Plan {result.plan_id}: {result.status}",
        result=result,
        operator=operator.actor,
        lanes=sorted(result.lanes()) or [],
        plan_path=f"/plans/{quote(result.plan_id)}",
    )


def _count(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 6 else 0


def not_done_page(request: Request, pages: Pages, status_code: int, message: str) -> Response:
    return pages.respond(request, "message.html", status_code, title="Not done", message=message)
