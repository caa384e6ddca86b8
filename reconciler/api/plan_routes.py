"""`GET /v1/plans/{id}` and `POST /v1/plans/{id}/apply` (operator token).

The plan is shown as stored: a plan holds secret values only as key names and hashes, and
the answer is redacted again on the way out.

Applying goes through `core.apply.apply_plan`, the path `setpoint apply` takes, as the
operator the token names: a stale, blocked or expired plan is refused with the engine's own
message, audited under that operator. The apply is an operation (lane `plan:<id>`, which no
worker claims): the request waits up to `api_apply_wait_seconds` for it, so a refusal or a
quick apply is answered at once (200, or 409 with the engine's message); a longer apply is
answered 202 with the operation to poll, and runs on in the service's task group.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from reconciler.api.access import Caller, authenticate, authorize, require_operator
from reconciler.api.bodies import json_response, parse_body, read_bounded
from reconciler.api.lane_routes import idempotency_key, operation_view
from reconciler.api.service_state import ApiState, api_state
from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.core.plans import Plan, Trigger
from reconciler.errors import ApiRefused, IdempotencyConflict, PlanNotFound
from reconciler.records import operations, plan_store
from reconciler.records.columns import utcnow
from reconciler.records.database import in_thread, session_scope
from reconciler.records.grants import GrantAction
from reconciler.records.operations import (
    Operation,
    OperationPhase,
    OperationRequest,
    OperationStatus,
    Reservation,
)
from reconciler.records.plan_store import PlanStatus
from reconciler.secret_values import redact

log = logging.getLogger("setpoint.api")

router = APIRouter(prefix="/v1")

MAX_APPLY_BODY_BYTES = 1024
PLAN_LANE_PREFIX = "plan:"  # an apply's operation: no kind is called "plan", so no worker takes it
APPLY_STATUS = {
    "applied": OperationStatus.succeeded,
    "failed": OperationStatus.failed,
    "waiting": OperationStatus.failed,
    "refused": OperationStatus.blocked,
}


class ApplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_destroy: int = Field(
        default=0, ge=0, le=10_000, description="deletions allowed past the blast-radius guard"
    )


async def _load(request: Request, plan_id: str) -> tuple[Plan, PlanStatus]:
    try:
        return await in_thread(plan_store.load, api_state(request).engine, plan_id[:40])
    except PlanNotFound:
        raise ApiRefused(404, "unknown_plan", "not found", f"no plan {plan_id[:40]}") from None


@router.get("/plans/{plan_id}", summary="A stored plan (operator, or a workflow granted its lanes)")
async def show_plan(request: Request, plan_id: str) -> Response:
    caller = await authenticate(request)
    plan, status = await _load(request, plan_id)
    for lane in plan.lanes:
        await authorize(request, caller, lane, GrantAction.plan)
    return json_response({"status": status.value, "plan": plan.model_dump(mode="json")})


def _outcome(result: ApplyResult) -> tuple[OperationStatus, dict[str, Any], str | None]:
    """The operation's status, result and error for an apply's result."""
    view = {
        "plan_id": result.plan_id,
        "status": result.status,
        "refusal": result.refusal.model_dump(mode="json") if result.refusal else None,
        "actions": [dataclasses.asdict(report) for report in result.actions],
    }
    error = None
    if result.refusal is not None:
        error = result.refusal.message
    elif result.status == "waiting":
        error = "not finished: a lane waits to be tried again (see its status)"
    elif result.status == "failed":
        error = "an action failed (see the result's actions)"
    return APPLY_STATUS[result.status], view, error


def _finish(state: ApiState, operation_id: str, plan_id: str, outcome: tuple[Any, ...]) -> None:
    status, result, error = outcome
    with session_scope(state.engine) as session:
        operations.advance(
            session,
            [operation_id],
            utcnow(),
            status=status,
            phase=OperationPhase.done,
            plan_id=plan_id,
            result=result,
            error=error,
        )


async def _apply(state: ApiState, operation: Operation, caller: Caller, allow_destroy: int) -> None:
    """Run the apply and record how it ended; never raises (it may run after the request)."""
    plan_id = operation.lane.removeprefix(PLAN_LANE_PREFIX)
    runtime = dataclasses.replace(state.runtime, actor=caller.actor)
    try:
        result = await apply_plan(
            runtime, plan_id, allow_destroy=allow_destroy, trigger=Trigger.operator
        )
        outcome: tuple[Any, ...] = _outcome(result)
    except Exception as exc:  # the operation must end, whatever happened
        log.error("apply of %s failed: %s", plan_id, redact(f"{type(exc).__name__}: {exc}"))
        outcome = (OperationStatus.failed, {"plan_id": plan_id}, f"unexpected {type(exc).__name__}")
    await in_thread(_finish, state, operation.id, plan_id, outcome)


def _reserve(state: ApiState, wanted: OperationRequest) -> Reservation:
    now = utcnow()
    with session_scope(state.engine, write_lock=True) as session:
        reservation = operations.reserve(session, wanted, now)
        if reservation.created:
            operations.advance(
                session,
                [reservation.operation.id],
                now,
                status=OperationStatus.running,
                phase=OperationPhase.applying,
            )
    return reservation


def _operation(state: ApiState, operation_id: str) -> Operation | None:
    with session_scope(state.engine) as session:
        return operations.get(session, operation_id)


async def _run_or_start(
    state: ApiState, operation: Operation, caller: Caller, body: ApplyBody
) -> None:
    """Apply in the service's task group, waiting for it a while; inline without one."""
    if state.background is None:
        await _apply(state, operation, caller, body.allow_destroy)
        return
    finished = anyio.Event()

    async def run() -> None:
        try:
            await _apply(state, operation, caller, body.allow_destroy)
        finally:
            finished.set()

    state.background.start_soon(run)
    with anyio.move_on_after(state.settings.api_apply_wait_seconds):
        await finished.wait()


def _answer(operation: Operation) -> Response:
    view = operation_view(operation)
    location = {"Location": view["links"]["self"]}
    if operation.status == OperationStatus.blocked.value:
        refusal = (operation.result or {}).get("refusal") or {}
        kind = f"plan_{refusal.get('type', 'refused')}"
        raise ApiRefused(409, kind, "plan refused", operation.error or "refused")
    if OperationStatus(operation.status).final:
        return json_response(view, 200, headers=location)
    return json_response(view, 202, headers=location)


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
)
async def apply_stored_plan(request: Request, plan_id: str) -> Response:
    caller = await require_operator(request)
    raw = await read_bounded(request, MAX_APPLY_BODY_BYTES)
    body = parse_body(raw, ApplyBody)
    plan, _ = await _load(request, plan_id)  # an unknown plan is a 404 before anything else
    state = api_state(request)
    wanted = OperationRequest(
        lane=PLAN_LANE_PREFIX + plan.plan_id,
        requester=caller.requester,
        body_digest=hashlib.sha256(body.model_dump_json().encode()).hexdigest(),
        apply_requested=True,
        idempotency_key=idempotency_key(request),
    )
    try:
        reservation = await in_thread(_reserve, state, wanted)
    except IdempotencyConflict as conflict:
        raise ApiRefused(
            409, "idempotency_conflict", "idempotency key reused", str(conflict)
        ) from None
    if reservation.created:
        await _run_or_start(state, reservation.operation, caller, body)
    operation = await in_thread(_operation, state, reservation.operation.id)
    assert operation is not None
    return _answer(operation)
