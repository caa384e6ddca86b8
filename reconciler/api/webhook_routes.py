"""`POST /v1/webhooks/github`: signature verified, size bounded, delivery recorded once.

Nothing in a delivery is trusted before its HMAC matches, and the body is never read past
the size setting. The delivery id is recorded in the same transaction as the work the
delivery queues, so a redelivery (same `X-GitHub-Delivery`) queues nothing and a crash
between the two cannot happen. The kinds say which lanes an event concerns (a
`pull_request` delivery: that pull request's preview lane in every product of the
repository with previews); the worker that takes a lane a webhook queued runs discovery
first and reads the pull request from GitHub itself (the payload says where to look, never
what is true). An event no kind takes is recorded and queues nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from providers.github.webhooks import WebhookRejected, WebhookVerifier
from reconciler.api.bodies import json_response, read_bounded
from reconciler.api.metrics import event_label
from reconciler.api.problems import problem_responses
from reconciler.api.refusals import record_refusal
from reconciler.api.service_state import ApiState, api_state, client_source
from reconciler.core.lane_requests import event_lanes
from reconciler.errors import ApiRefused
from reconciler.records import work_queue
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread, session_scope
from reconciler.records.webhook_deliveries import prune_deliveries, record_delivery
from reconciler.records.work_queue import WorkPriority

router = APIRouter(prefix="/v1")

WEBHOOK_ACTOR = "github-webhook"
# GitHub redelivers on request for a few days; a month covers it with room to spare.
DELIVERY_RETENTION = timedelta(days=30)
REFUSAL_STATUS = {"body_too_large": 413, "missing_signature": 401, "bad_signature": 401}


class _DatabaseDecides:
    """The verifier's delivery memory, switched off: the database records deliveries,
    atomically with their work (`record_delivery`)."""

    def seen(self, delivery_id: str) -> bool:
        return False

    def remember(self, delivery_id: str) -> None:
        return None


async def _refuse(request: Request, reason: str) -> ApiRefused:
    state = api_state(request)
    event = event_label(request.headers.get("x-github-event", ""))
    state.metrics.webhooks.labels(event, reason).inc()
    await record_refusal(
        state.engine,
        state.refusals,
        AuditEvent.webhook_refused,
        source=client_source(request),
        actor=WEBHOOK_ACTOR,
        data={"reason": reason, "delivery": request.headers.get("x-github-delivery", "")[:100]},
    )
    status = REFUSAL_STATUS.get(reason, 400)
    title = "body too large" if status == 413 else "delivery refused"
    return ApiRefused(status, f"webhook_{reason}", title, f"webhook refused: {reason}")


def _record(
    state: ApiState, event: str, delivery_id: str, payload: dict[str, Any]
) -> list[str] | None:
    """Record the delivery and queue its lanes together; None for a redelivery."""
    lanes = event_lanes(state.runtime, event, payload)
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    now = state.runtime.now()
    with session_scope(state.engine, write_lock=True) as session:
        if not record_delivery(session, delivery_id, event, action, lanes, now):
            return None
        reason = f"webhook {event} {delivery_id[:60]}"
        work_queue.enqueue(session, lanes, WorkPriority.webhook, reason, now)
        prune_deliveries(session, now - DELIVERY_RETENTION)
    return lanes


@router.post(
    "/webhooks/github",
    status_code=202,
    summary="GitHub webhook deliveries",
    responses=problem_responses(400, 401, 413),
)
async def api_github_webhook(request: Request) -> Response:
    state = api_state(request)
    secret = state.settings.api_webhook_secret
    if secret is None:
        raise await _refuse(request, "not_configured")
    limit = state.settings.api_max_body_bytes
    try:
        body = await read_bounded(request, limit)
    except ApiRefused:
        raise await _refuse(request, "body_too_large") from None
    verifier = WebhookVerifier(
        secret.get_secret_value(), max_body_bytes=limit, deliveries=_DatabaseDecides()
    )
    try:
        delivery = verifier.verify(dict(request.headers), body)
    except WebhookRejected as rejected:
        raise await _refuse(request, rejected.reason) from None
    lanes = await in_thread(_record, state, delivery.event, delivery.delivery_id, delivery.payload)
    outcome = "redelivery" if lanes is None else "queued"
    state.metrics.webhooks.labels(event_label(delivery.event), outcome).inc()
    view = {"delivery": delivery.delivery_id, "redelivery": lanes is None, "queued": lanes or []}
    return json_response(view, 200 if lanes is None else 202)
