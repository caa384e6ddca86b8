"""Operations: the durable record of one requested reconcile (a workflow's, an operator's).

An operation is reserved in the database before anything happens, in the same transaction
as the lane work it queues, so a request that was answered 202 is never lost and never
done twice. A caller's idempotency key finds its operation again: the same key with the
same body is the same operation, and the same key with another body is a conflict. Keys
are scoped to the requester, so one caller can never read another's operation by guessing
its key.

The worker that takes the lane moves its pending operations to `running`, and finishes
them with the plan it made and what became of it. An apply that started a long wait (a
deploy's build, a runner coming online) parks the operation instead: `running` in phase
`waiting`, its result naming what it waits for and when the loop looks again; the lane's
next look takes it up again, and it ends as it would have had the worker waited. A request
that comes while it is parked is merged into it.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.errors import IdempotencyConflict
from reconciler.records.columns import EnumText, JSONDocument, UTCDateTime
from reconciler.records.database import table_of


class OperationStatus(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    blocked = "blocked"

    @property
    def final(self) -> bool:
        return self in {OperationStatus.succeeded, OperationStatus.failed, OperationStatus.blocked}


class RequestOutcome(StrEnum):
    """What a requested reconcile came to: `result["outcome"]` of its operation."""

    converged = "converged"  # nothing to do
    planned = "planned"  # a plan waits for an operator (apply was not asked for)
    blocked = "blocked"  # the plan has blockers
    refused = "refused"  # the lane's policy, or the apply, refused
    applied = "applied"
    failed = "failed"
    waiting = "waiting"  # applied as far as it could; a lane said "not yet"
    unknown_lane = "unknown_lane"  # no kind lists the lane
    interrupted = "interrupted"  # its worker stopped before it ended
    gave_up = "gave_up"  # parked longer than `request_wait_limit_seconds`; the lane waits on


class OperationPhase(StrEnum):
    queued = "queued"
    planning = "planning"
    applying = "applying"
    # parked: its lane waits out a long wait it started (a build), no worker holds it, and
    # the loop looks again at its due time (`result["waiting_for"]`, `result["due_at"]`)
    waiting = "waiting"
    done = "done"


class Operation(SQLModel, table=True):
    __tablename__ = "operations"
    __table_args__ = (sa.UniqueConstraint("requester", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=40)
    lane: str = Field(index=True, max_length=200)
    requester: str = Field(max_length=300)
    idempotency_key: str | None = Field(default=None, max_length=200)
    body_digest: str = Field(max_length=64)
    # The caller asked for apply and its grant allows it; the lane's policy still decides.
    apply_requested: bool = False
    status: OperationStatus = Field(
        default=OperationStatus.pending, sa_type=EnumText(OperationStatus, 20), index=True
    )
    phase: OperationPhase = Field(
        default=OperationPhase.queued, sa_type=EnumText(OperationPhase, 20)
    )
    plan_id: str | None = Field(default=None, max_length=40)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    error: str | None = Field(default=None, max_length=1000)
    # How the audit trail names who asked (a workflow's repository, ref and run; an
    # operator), and the reason they gave: the apply made for it is audited under them.
    actor: str | None = Field(default=None, max_length=300)
    reason: str | None = Field(default=None, max_length=500)
    # The earlier operation of the same lane that this one was worked together with: one
    # plan covered both, and both end with its result.
    merged_into: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


_operations = table_of(Operation)


@dataclass(frozen=True)
class OperationRequest:
    lane: str
    requester: str
    body_digest: str
    apply_requested: bool = False
    idempotency_key: str | None = None
    actor: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Reservation:
    operation: Operation
    created: bool  # False: the idempotency key found an earlier operation


def new_operation_id() -> str:
    return f"op_{secrets.token_hex(12)}"


def reserve(session: Session, request: OperationRequest, now: datetime) -> Reservation:
    """Record a new pending operation, or find the one `request.idempotency_key` made before.

    Raises IdempotencyConflict for a key reused with another body. Two requests racing with
    one key both end with the same operation: the loser of the insert reads the winner's."""
    earlier = made_before(session, request)
    if earlier is not None:
        return earlier
    operation = Operation(
        id=new_operation_id(),
        lane=request.lane,
        requester=request.requester,
        idempotency_key=request.idempotency_key,
        body_digest=request.body_digest,
        apply_requested=request.apply_requested,
        actor=request.actor,
        reason=request.reason,
        merged_into=_waiting_on_lane(session, request.lane),
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(operation)
    except IntegrityError:
        winner = _by_key(session, request)
        if winner is None:
            raise
        return _same_request(winner, request)
    return Reservation(operation, created=True)


def _waiting_on_lane(session: Session, lane: str) -> str | None:
    """The lane's oldest operation that no worker has taken yet, or one parked on a long
    wait: a new request is worked together with it (one plan for both, the parked one's
    next look), so it is merged into it. An operation being worked is not merged into: the
    new request gets a plan of its own after it."""
    parked = sa.and_(
        _operations.c.status == OperationStatus.running.value,
        _operations.c.phase == OperationPhase.waiting.value,
    )
    return session.execute(
        sa.select(_operations.c.id)
        .where(
            _operations.c.lane == lane,
            sa.or_(_operations.c.status == OperationStatus.pending.value, parked),
            _operations.c.merged_into.is_(None),
        )
        .order_by(_operations.c.created_at)
        .limit(1)
    ).scalar_one_or_none()


def merge_into_first(session: Session, found: Sequence[Operation]) -> None:
    """Operations a worker takes together are merged into the oldest of them (those that
    came while it was pending already are)."""
    if len(found) < 2:
        return
    first, rest = found[0], [op for op in found[1:] if op.merged_into is None]
    for op in rest:
        op.merged_into = first.id
    if rest:
        session.execute(
            _operations.update()
            .where(_operations.c.id.in_([op.id for op in rest]))
            .values(merged_into=first.id)
        )


def made_before(session: Session, request: OperationRequest) -> Reservation | None:
    """The operation `request.idempotency_key` made before (a retry gets it back even when
    its lane could no longer take the request), or None. Raises IdempotencyConflict for
    the key reused with another body or lane."""
    earlier = _by_key(session, request)
    return None if earlier is None else _same_request(earlier, request)


def _by_key(session: Session, request: OperationRequest) -> Operation | None:
    if request.idempotency_key is None:
        return None
    return session.exec(
        select(Operation).where(
            Operation.requester == request.requester,
            Operation.idempotency_key == request.idempotency_key,
        )
    ).one_or_none()


def _same_request(earlier: Operation, request: OperationRequest) -> Reservation:
    if earlier.body_digest != request.body_digest or earlier.lane != request.lane:
        raise IdempotencyConflict(request.idempotency_key or "", earlier.id)
    return Reservation(earlier, created=False)


def get(session: Session, operation_id: str) -> Operation | None:
    return session.get(Operation, operation_id)


def open_for_lane(session: Session, lane: str) -> list[Operation]:
    """The lane's operations that are not finished, oldest first."""
    return open_for_lanes(session, [lane]).get(lane, [])


def open_for_lanes(session: Session, lanes: Sequence[str]) -> dict[str, list[Operation]]:
    """`open_for_lane` for many lanes in one query (a batch's lanes): lane -> its operations
    that are not finished, oldest first; lanes with none are left out."""
    finished = [s.value for s in OperationStatus if s.final]
    rows = session.exec(
        select(Operation)
        .where(col(Operation.lane).in_(lanes), col(Operation.status).not_in(finished))
        .order_by(col(Operation.created_at))
    )
    found: dict[str, list[Operation]] = {}
    for operation in rows:
        found.setdefault(operation.lane, []).append(operation)
    return found


def advance(
    session: Session,
    operation_ids: Sequence[str],
    now: datetime,
    *,
    status: OperationStatus,
    phase: OperationPhase,
    plan_id: str | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Move operations on; a finished operation never changes again."""
    if not operation_ids:
        return
    finished = [s.value for s in OperationStatus if s.final]
    values: dict[str, object] = {"status": status.value, "phase": phase.value, "updated_at": now}
    if plan_id is not None:
        values["plan_id"] = plan_id
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = error[:1000]
    session.execute(
        _operations.update()
        .where(_operations.c.id.in_(list(operation_ids)), _operations.c.status.not_in(finished))
        .values(**values)
    )


def stranded(session: Session, live_claims: Collection[str]) -> list[Operation]:
    """Running operations whose lane no worker holds a live claim on: their worker is gone
    (it died, or shut down before it could finish them). A parked operation is no worker's:
    it waits for its lane's next look, and is not stranded."""
    rows = session.exec(
        select(Operation)
        .where(
            Operation.status == OperationStatus.running.value,
            Operation.phase != OperationPhase.waiting.value,
        )
        .order_by(col(Operation.created_at))
    )
    return [op for op in rows if op.lane not in live_claims]


def was_parked(operation: Operation) -> bool:
    """The operation's apply parked it on a long wait before (its result says what it
    waits for): a look at that wait was being taken, not a first apply."""
    return bool(operation.result) and "waiting_for" in (operation.result or {})


def park_again(session: Session, operation_ids: Sequence[str], now: datetime) -> None:
    """Parked operations whose worker died while it looked at their wait: parked again, for
    the lane's next look (the wait they started goes on; nothing of it is asked again)."""
    _move_running(session, operation_ids, phase=OperationPhase.waiting.value, updated_at=now)


def lanes_with_open(session: Session) -> list[str]:
    """Lanes that have an operation not yet finished."""
    finished = [s.value for s in OperationStatus if s.final]
    rows = session.execute(
        sa.select(_operations.c.lane).where(_operations.c.status.not_in(finished)).distinct()
    )
    return sorted(row[0] for row in rows)


def requeue(session: Session, operation_ids: Sequence[str], now: datetime) -> None:
    """Running operations whose worker is gone before it applied anything: pending again, to
    be planned afresh by the next worker (`advance` never moves an operation backwards)."""
    _move_running(
        session,
        operation_ids,
        status=OperationStatus.pending.value,
        phase=OperationPhase.queued.value,
        updated_at=now,
    )


def _move_running(session: Session, operation_ids: Sequence[str], **values: object) -> None:
    """Set `values` on those of the operations that are still running."""
    if not operation_ids:
        return
    session.execute(
        _operations.update()
        .where(
            _operations.c.id.in_(list(operation_ids)),
            _operations.c.status == OperationStatus.running.value,
        )
        .values(**values)
    )
