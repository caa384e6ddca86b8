"""`GET /v1/plans/{id}` and `POST /v1/plans/{id}/apply` (operator token).

The plan is shown as stored: a plan holds secret values only as key names and hashes, and
the answer is redacted again on the way out. Applying goes through `core.apply.apply_plan`,
the path `setpoint apply` takes, as the operator the token names: a stale, blocked or
expired plan is refused with the engine's own message, and audited under that operator.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from reconciler.api.access import authenticate, authorize, require_operator
from reconciler.api.bodies import json_response, parse_body, read_bounded
from reconciler.api.service_state import api_state
from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.core.plans import Plan, Trigger
from reconciler.errors import ApiRefused, PlanNotFound
from reconciler.records import plan_store
from reconciler.records.database import in_thread
from reconciler.records.grants import GrantAction
from reconciler.records.plan_store import PlanStatus

router = APIRouter(prefix="/v1")

MAX_APPLY_BODY_BYTES = 1024


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


def _result_view(result: ApplyResult) -> dict[str, Any]:
    return {
        "plan_id": result.plan_id,
        "status": result.status,
        "actions": [dataclasses.asdict(report) for report in result.actions],
    }


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
    body = parse_body(await read_bounded(request, MAX_APPLY_BODY_BYTES), ApplyBody)
    await _load(request, plan_id)  # an unknown plan is a 404, not an error inside the engine
    runtime = dataclasses.replace(api_state(request).runtime, actor=caller.actor)
    result = await apply_plan(
        runtime, plan_id, allow_destroy=body.allow_destroy, trigger=Trigger.operator
    )
    if result.refusal is not None:
        refusal = result.refusal
        raise ApiRefused(409, f"plan_{refusal.type.value}", "plan refused", refusal.message)
    return json_response(_result_view(result))
