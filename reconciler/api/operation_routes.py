"""`GET /v1/operations/{id}`: a requested reconcile, for the workflow that asked or an operator.

Someone else's operation reads as no operation (and the attempt is audited): ids are not
for probing. A parked operation (running, phase `waiting`) says what it waits for and when
its lane is looked at again (`waiting`), so a caller polling it knows it is not stuck.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from reconciler.api.access import authenticate, deny
from reconciler.api.bodies import json_response
from reconciler.api.problems import problem_responses
from reconciler.api.service_state import ApiState, api_state
from reconciler.errors import ApiRefused
from reconciler.records import operations
from reconciler.records.database import in_thread, session_scope
from reconciler.records.operations import Operation, OperationPhase

router = APIRouter(prefix="/v1")


def operation_view(operation: Operation) -> dict[str, Any]:
    return {
        "id": operation.id,
        "lane": operation.lane,
        "status": operation.status,
        "phase": operation.phase,
        "apply_requested": operation.apply_requested,
        "plan_id": operation.plan_id,
        "result": operation.result,
        "error": operation.error,
        "requested_by": operation.actor or operation.requester,
        "reason": operation.reason,
        "merged_into": operation.merged_into,
        "waiting": _waiting(operation),
        "created_at": operation.created_at.astimezone(UTC).isoformat(),
        "updated_at": operation.updated_at.astimezone(UTC).isoformat(),
        "links": {"self": f"/v1/operations/{operation.id}"},
    }


def _waiting(operation: Operation) -> dict[str, Any] | None:
    """What a parked operation waits for, when its lane is looked at again, and since when;
    None unless it is parked."""
    result = operation.result or {}
    if operation.phase != OperationPhase.waiting or "waiting_for" not in result:
        return None
    return {
        "for": result["waiting_for"],
        "due_at": result.get("due_at"),
        "since": result.get("parked_since"),
    }


@router.get(
    "/operations/{operation_id}",
    summary="An operation: its requester, or an operator",
    responses=problem_responses(401, 404),
)
async def api_operation(request: Request, operation_id: str) -> Response:
    caller = await authenticate(request)
    operation = await in_thread(_operation, api_state(request), operation_id)
    if operation is None or (caller.operator is None and operation.requester != caller.requester):
        # Someone else's operation reads as no operation: ids are not for probing.
        if operation is not None:
            await deny(
                request,
                404,
                "not_requester",
                f"no operation {operation_id[:40]}",
                actor=caller.actor,
                lane=operation.lane,
                shown_as="unknown_operation",
            )
        raise ApiRefused(404, "unknown_operation", "not found", f"no operation {operation_id[:40]}")
    return json_response(operation_view(operation))


def _operation(state: ApiState, operation_id: str) -> Operation | None:
    with session_scope(state.engine) as session:
        return operations.get(session, operation_id[:40])
