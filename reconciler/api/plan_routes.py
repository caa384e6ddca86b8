"""`GET /v1/plans/{id}` and `POST /v1/plans/{id}/apply` (operator token).

The plan is shown as stored: a plan holds secret values only as key names and hashes, and
the answer is redacted again on the way out. With it come its status and its last refused
apply (from the audit trail), so a caller following an apply learns how it ended.

Applying goes through `core.apply.apply_plan`, the path `setpoint apply` takes, as the
operator the token names: a stale, blocked or expired plan is refused with the engine's own
message, audited under that operator. The request waits up to `api_apply_wait_seconds`: a
refusal or a quick apply is answered at once (409 with the engine's message, or 200 with
the result); a longer apply runs on in the service's task group and is answered 202
pointing at the plan, whose status (`applying`, then `applied`, `failed` or `waiting`) is
the apply's durable record. No operation row is made: the loop's workers own operations,
and an apply is not lane work.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from reconciler.api.access import Caller, authenticate, authorize, require_operator
from reconciler.api.bodies import json_response, parse_body, read_bounded
from reconciler.api.problems import problem_responses
from reconciler.api.service_state import ApiState, api_state
from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.core.plans import Plan, Trigger
from reconciler.errors import ApiRefused, PlanNotFound
from reconciler.records import audit, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread, session_scope
from reconciler.records.grants import GrantAction
from reconciler.records.plan_store import PlanStatus
from reconciler.secret_values import redact

log = logging.getLogger("setpoint.api")

router = APIRouter(prefix="/v1")

MAX_APPLY_BODY_BYTES = 1024


class ApplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_destroy: int = Field(
        default=0, ge=0, le=10_000, description="deletions allowed past the blast-radius guard"
    )
    reason: str | None = Field(
        default=None, max_length=500, description="why; written into the apply's audit records"
    )


async def _load(request: Request, plan_id: str) -> tuple[Plan, PlanStatus]:
    try:
        return await in_thread(plan_store.load, api_state(request).engine, plan_id[:40])
    except PlanNotFound:
        raise ApiRefused(404, "unknown_plan", "not found", f"no plan {plan_id[:40]}") from None


def _last_refusal(state: ApiState, plan_id: str) -> dict[str, Any] | None:
    with session_scope(state.engine) as session:
        records = audit.list_records(
            session, plan_id=plan_id, event=AuditEvent.apply_refused, limit=1
        )
    if not records:
        return None
    record = records[-1]
    return {
        "at": record.at.isoformat(),
        "actor": record.actor,
        "blocker": record.data.get("blocker"),
        "message": record.data.get("message"),
    }


@router.get(
    "/plans/{plan_id}",
    summary="A stored plan (operator, or a workflow granted its lanes)",
    responses=problem_responses(401, 403, 404),
)
async def api_plan(request: Request, plan_id: str) -> Response:
    caller = await authenticate(request)
    plan, status = await _load(request, plan_id)
    for lane in plan.lanes:
        await authorize(request, caller, lane, GrantAction.plan)
    refusal = await in_thread(_last_refusal, api_state(request), plan.plan_id)
    return json_response(
        {"status": status.value, "last_refusal": refusal, "plan": plan.model_dump(mode="json")}
    )


def _result_view(result: ApplyResult) -> dict[str, Any]:
    return {
        "plan_id": result.plan_id,
        "status": result.status,
        "actions": [dataclasses.asdict(report) for report in result.actions],
        "links": {"plan": f"/v1/plans/{result.plan_id}"},
    }


async def _apply(
    state: ApiState, plan_id: str, caller: Caller, body: ApplyBody
) -> ApplyResult | None:
    """Run the apply as the operator; None when it raised (logged: the plan's status and the
    audit trail say where it stopped)."""
    runtime = dataclasses.replace(state.runtime, actor=caller.actor)
    try:
        return await apply_plan(
            runtime,
            plan_id,
            allow_destroy=body.allow_destroy,
            trigger=Trigger.operator,
            reason=body.reason,
        )
    except Exception as exc:  # it may run after the request: nobody else would see it
        log.error("apply of %s failed: %s", plan_id, redact(f"{type(exc).__name__}: {exc}"))
        return None


async def _run_or_start(
    state: ApiState, plan_id: str, caller: Caller, body: ApplyBody
) -> tuple[bool, ApplyResult | None]:
    """(finished, result): the apply, awaited for a while in the service's task group, or
    inline when the app runs without one."""
    if state.background is None:
        return True, await _apply(state, plan_id, caller, body)
    finished = anyio.Event()
    outcome: list[ApplyResult | None] = []

    async def run() -> None:
        try:
            outcome.append(await _apply(state, plan_id, caller, body))
        finally:
            finished.set()

    state.background.start_soon(run)
    with anyio.move_on_after(state.settings.api_apply_wait_seconds):
        await finished.wait()
    return (True, outcome[0]) if outcome else (False, None)


APPLY_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": ApplyBody.model_json_schema()}},
    }
}


@router.post(
    "/plans/{plan_id}/apply",
    openapi_extra=APPLY_BODY_DOC,
    summary="Apply a stored plan, as `setpoint apply` does (operator token)",
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)
async def api_apply_plan(request: Request, plan_id: str) -> Response:
    caller = await require_operator(request)
    body = parse_body(await read_bounded(request, MAX_APPLY_BODY_BYTES), ApplyBody)
    plan, _ = await _load(request, plan_id)  # an unknown plan is a 404 before anything else
    finished, result = await _run_or_start(api_state(request), plan.plan_id, caller, body)
    location = {"Location": f"/v1/plans/{plan.plan_id}"}
    if not finished:
        view = {
            "plan_id": plan.plan_id,
            "status": "applying",
            "links": {"plan": location["Location"]},
        }
        return json_response(view, 202, headers=location)
    if result is None:
        raise ApiRefused(
            500, "apply_failed", "apply failed", "the apply failed; see the server log"
        )
    if result.refusal is not None:
        refusal = result.refusal
        raise ApiRefused(409, f"plan_{refusal.type}", "plan refused", refusal.message)
    return json_response(_result_view(result), 200, headers=location)
