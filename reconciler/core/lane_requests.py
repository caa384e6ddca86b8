"""A workflow's request for one lane, checked by the lane's kind before it is queued.

Most requests only ask for a reconcile. Some carry what the lane's desired state depends on
(a preview deployed on request takes the head SHA whose image CI just built): the lane's
kind turns them into desired-state documents. `reserve_reconcile` stores them in the
transaction that reserves the request's operation, queues its lane and audits who asked,
so a request answered 202 is never lost and never done twice, and the request and what it
changed land together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from desired_state.document import Document
from reconciler.core.planning import stored_fleet_kinds
from reconciler.core.plans import kind_of_lane
from reconciler.errors import RequestRefused, UnknownLane
from reconciler.kinds.base import EventKind, LaneRequest, RequestableKind
from reconciler.records import audit, operations, work_queue
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.desired import DocumentChange, store_found
from reconciler.records.operations import OperationRequest, Reservation
from reconciler.records.work_queue import WorkPriority
from reconciler.runtime import Runtime

REQUEST_SOURCE = "workflow"  # desired objects a request changed say so in their `source`


def event_lanes(runtime: Runtime, event: str, payload: Mapping[str, Any]) -> list[str]:
    """The lanes a provider's event (a GitHub webhook) may concern, as their kinds say.
    Blocking: call it in a worker thread."""
    kinds = stored_fleet_kinds(runtime)
    lanes = [
        lane
        for kind in kinds
        if isinstance(kind, EventKind)
        for lane in kind.lanes_for_event(event, payload)
    ]
    return list(dict.fromkeys(lanes))


def request_documents(runtime: Runtime, lane: str, params: Mapping[str, str]) -> list[Document]:
    """The documents a request for `lane` changes. Raises UnknownLane for a lane no kind has,
    RequestRefused when the kind refuses the request or takes no parameters. Blocking: call
    it in a worker thread."""
    kinds = stored_fleet_kinds(runtime)
    kind = next((k for k in kinds if k.name == kind_of_lane(lane)), None)
    if kind is None:
        raise UnknownLane(lane)
    if isinstance(kind, RequestableKind):  # it knows lanes that wait for this very request
        return kind.accept_request(LaneRequest(lane, params))
    if lane not in kind.lanes():
        raise UnknownLane(lane)
    if params:
        names = ", ".join(sorted(params))
        raise RequestRefused(f"{kind.name} lanes take no request parameters (got {names})")
    return []


def reserve_reconcile(
    runtime: Runtime, request: OperationRequest, params: Mapping[str, str], note: str | None
) -> Reservation:
    """The request's operation, what it changes in the desired state, its lane queued and
    the audit record of who asked: one transaction. A request whose idempotency key made an
    operation before gets that one back, unchanged. Raises what `request_documents` raises,
    and IdempotencyConflict. Blocking: call it in a worker thread."""
    with session_scope(runtime.database) as session:
        earlier = operations.made_before(session, request)
    if earlier is not None:
        return earlier
    documents = request_documents(runtime, request.lane, params)
    now = runtime.now()
    with audit.transaction(runtime.database) as session:
        reservation = operations.reserve(session, request, now)
        if not reservation.created:
            return reservation
        stored = store_found(session, documents, source=REQUEST_SOURCE, now=now)
        changed = [
            key for key, change, _ in stored.entries if change is not DocumentChange.unchanged
        ]
        reason = f"operation {reservation.operation.id}"
        work_queue.enqueue(session, [request.lane], WorkPriority.workflow, reason, now)
        audit.append(
            session,
            event=AuditEvent.reconcile_requested,
            actor=request.actor or request.requester,
            lane=request.lane,
            data={
                "operation": reservation.operation.id,
                "apply_requested": request.apply_requested,
                "params": dict(params),
                "changed": changed,
                "note": note,
                "reason": request.reason,
                "merged_into": reservation.operation.merged_into,
            },
            at=now,
        )
    return reservation
