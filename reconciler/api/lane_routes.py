"""`POST /v1/lanes/{kind}/{lane}/reconcile` (202 at once), `GET /v1/lanes`, `GET /v1/lanes/{...}`.

A reconcile request reserves its operation and queues its lane in one transaction
(`core.lane_requests.reserve_reconcile`, with the audit record saying who asked): a request
answered 202 is never lost and never done twice. The work itself is the loop's: a worker
claims the lane, plans, applies what the lane's policy and the request allow, and finishes
the operation.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from reconciler.api.access import authenticate, authorize, require_operator
from reconciler.api.bodies import json_response, parse_body, read_bounded
from reconciler.api.operation_routes import operation_view
from reconciler.api.problems import problem_responses
from reconciler.api.service_state import ApiState, api_state
from reconciler.core.lane_requests import reserve_reconcile
from reconciler.core.plans import lane_key
from reconciler.errors import (
    ApiRefused,
    IdempotencyConflict,
    ProviderNotConfigured,
    RequestRefused,
    SecretInAuditRecord,
    UnknownLane,
)
from reconciler.records import work_queue
from reconciler.records.database import in_thread, session_scope
from reconciler.records.grants import GrantAction
from reconciler.records.operations import OperationRequest, Reservation
from reconciler.records.status import LaneStatusRow, all_statuses
from reconciler.records.work_queue import LaneWork, WorkPriority

router = APIRouter(prefix="/v1")

KIND_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
LANE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
MAX_REQUEST_BYTES = 4096  # a reconcile body is a flag, a note and a few parameters
MAX_PARAMS = 10


class ReconcileBody(BaseModel):
    """What a caller may ask for. `apply` needs a grant that allows apply; the lane's
    policy still decides whether the worker applies."""

    model_config = ConfigDict(extra="forbid")

    apply: bool = False
    note: str | None = Field(default=None, max_length=200, description="for the audit trail")
    reason: str | None = Field(
        default=None,
        max_length=500,
        description="why the lane is asked for; carried into the audit record of its apply",
    )
    params: dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=200)]] = (
        Field(
            default_factory=dict,
            max_length=MAX_PARAMS,
            description="what the lane's kind takes from a request, e.g. a preview's "
            "`sha` (the head whose image was just built)",
        )
    )


def lane_of(kind: str, lane: str) -> str:
    if not LANE_PATTERN.match(lane) or len(lane) > 150:
        raise ApiRefused(
            422, "invalid_request", "invalid request", "path.lane: not a lane name (shop/testing)"
        )
    return lane_key(kind, lane)


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise ApiRefused(
            400,
            "bad_idempotency_key",
            "bad idempotency key",
            "Idempotency-Key must be 1 to 200 printable ASCII characters without spaces",
        )
    return key


def _digest(lane: str, body: ReconcileBody) -> str:
    canonical = json.dumps({"lane": lane, **body.model_dump()}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reserve(state: ApiState, request: OperationRequest, body: ReconcileBody) -> Reservation:
    """`core.lane_requests.reserve_reconcile`, its refusals as the API answers them."""
    try:
        return reserve_reconcile(state.runtime, request, body.params, body.note)
    except UnknownLane:
        raise ApiRefused(404, "unknown_lane", "not found", f"no lane {request.lane}") from None
    except RequestRefused as refused:
        raise ApiRefused(422, "request_refused", "request refused", str(refused)) from None
    except ProviderNotConfigured as missing:  # this deployment cannot reconcile that kind
        raise ApiRefused(503, "kind_not_configured", "unavailable", str(missing)) from None


RECONCILE_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": ReconcileBody.model_json_schema()}},
    }
}


@router.post(
    "/lanes/{kind}/{lane:path}/reconcile",
    status_code=202,
    openapi_extra=RECONCILE_BODY_DOC,
    summary="Ask for one lane to be reconciled; answered 202 with an operation to poll",
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)
async def api_reconcile_lane(
    request: Request,
    kind: str = Path(pattern=KIND_PATTERN),
    lane: str = Path(),
) -> Response:
    key = lane_of(kind, lane)
    caller = await authenticate(request)
    limit = min(MAX_REQUEST_BYTES, api_state(request).settings.api_max_body_bytes)
    body = parse_body(await read_bounded(request, limit), ReconcileBody)
    action = GrantAction.apply if body.apply else GrantAction.plan
    await authorize(request, caller, key, action)
    wanted = OperationRequest(
        lane=key,
        requester=caller.requester,
        body_digest=_digest(key, body),
        apply_requested=body.apply,
        idempotency_key=idempotency_key(request),
        actor=caller.actor,
        reason=body.reason,
    )
    try:
        reservation = await in_thread(_reserve, api_state(request), wanted, body)
    except IdempotencyConflict as conflict:
        raise ApiRefused(
            409, "idempotency_conflict", "idempotency key reused", str(conflict)
        ) from None
    except SecretInAuditRecord as leak:  # a note or parameter holding a known secret value
        raise ApiRefused(422, "secret_in_request", "invalid request", str(leak)) from None
    view = operation_view(reservation.operation)
    location = {"Location": view["links"]["self"]}
    return json_response(view, 202 if reservation.created else 200, headers=location)


def _queue_view(work: LaneWork | None, now: datetime) -> dict[str, Any] | None:
    if work is None:
        return None
    return {
        "priority": WorkPriority(work.priority).name,
        "reason": work.reason,
        "due_at": work.due_at.astimezone(UTC).isoformat(),
        "attempts": work.attempts,
        "last_error": work.last_error,
        "claimed": work.claimed_until is not None and work.claimed_until > now,
    }


def _status_view(
    lane: str, row: LaneStatusRow | None, work: LaneWork | None, now: datetime
) -> dict[str, Any]:
    return {
        "lane": lane,
        "conditions": row.conditions if row else [],
        "observed_generation": row.observed_generation if row else None,
        "last_applied_plan": row.last_applied_plan if row else None,
        "retry_at": row.retry_at.astimezone(UTC).isoformat() if row and row.retry_at else None,
        "updated_at": row.updated_at.astimezone(UTC).isoformat() if row else None,
        "queue": _queue_view(work, now),
    }


def _lanes(state: ApiState) -> list[dict[str, Any]]:
    rows = {row.lane: row for row in all_statuses(state.engine)}
    with session_scope(state.engine) as session:
        queued = {work.lane: work for work in work_queue.queued(session)}
    now = state.runtime.now()
    return [
        _status_view(lane, rows.get(lane), queued.get(lane), now)
        for lane in sorted({*rows, *queued})
    ]


@router.get(
    "/lanes",
    summary="Every lane's status and queue state (operator token)",
    responses=problem_responses(401, 403),
)
async def api_lanes(request: Request) -> Response:
    await require_operator(request)
    return json_response({"lanes": await in_thread(_lanes, api_state(request))})


@router.get(
    "/lanes/{kind}/{lane:path}",
    summary="One lane's status and queue state",
    responses=problem_responses(401, 403, 404),
)
async def api_lane(
    request: Request, kind: str = Path(pattern=KIND_PATTERN), lane: str = Path()
) -> Response:
    key = lane_of(kind, lane)
    caller = await authenticate(request)
    await authorize(request, caller, key, GrantAction.plan)
    found = await in_thread(_one_lane, api_state(request), key)
    if found is None:
        raise ApiRefused(404, "unknown_lane", "not found", f"no status or queued work for {key}")
    return json_response(found)


def _one_lane(state: ApiState, lane: str) -> dict[str, Any] | None:
    with session_scope(state.engine) as session:
        row, work = session.get(LaneStatusRow, lane), session.get(LaneWork, lane)
    if row is None and work is None:
        return None
    return _status_view(lane, row, work, state.runtime.now())
