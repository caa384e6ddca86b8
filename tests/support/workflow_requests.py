"""A workflow's reconcile request as the API records it, and the operation it made."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from reconciler.records import operations
from reconciler.records.database import session_scope
from reconciler.records.operations import Operation, OperationRequest
from reconciler.records.work_queue import WorkPriority, enqueue
from reconciler.runtime import utcnow


def request_lane(engine: Engine, lane: str, *, apply: bool) -> str:
    """What the API does: reserve the operation and queue its lane in one transaction."""
    with session_scope(engine) as session:
        reserved = operations.reserve(
            session,
            OperationRequest(
                lane=lane, requester="repo:acme/shop", body_digest=lane, apply_requested=apply
            ),
            utcnow(),
        )
        enqueue(session, [lane], WorkPriority.workflow, "workflow request", utcnow())
    return reserved.operation.id


def operation_of(engine: Engine, operation_id: str) -> Operation:
    with session_scope(engine) as session:
        found = operations.get(session, operation_id)
    assert found is not None
    return found
