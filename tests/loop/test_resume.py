"""The resume pass at start-up finds work a dead worker left: lapsed claims are cleared, a
`running` operation that was planning goes back to pending, one that was applying fails
with a clear error, and every lane with an open operation is queued."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from reconciler.loop.resume import resume
from reconciler.records import operations, work_queue
from reconciler.records.database import session_scope
from reconciler.records.operations import OperationPhase, OperationStatus
from reconciler.records.work_queue import WorkPriority
from reconciler.runtime import Runtime, utcnow
from tests.loop.support import fast_engine
from tests.support.workflow_requests import operation_of, request_lane


def _dead_worker_took(engine: Engine, lanes: list[str], phase: OperationPhase) -> None:
    """A worker claimed `lanes` a while ago, moved their operations on, and died."""
    long_ago = utcnow() - timedelta(minutes=10)
    with session_scope(engine, write_lock=True) as session:
        # claimed now with a hold already over: the claim lapsed as a dead worker's does
        work_queue.claim(session, "dead-worker", utcnow(), limit=10, hold_seconds=-60)
        for lane in lanes:
            found = operations.open_for_lane(session, lane)
            operations.advance(
                session,
                [op.id for op in found],
                long_ago,
                status=OperationStatus.running,
                phase=phase,
                plan_id="plan-of-the-dead",
            )


def test_resume_requeues_planning_operations_and_fails_applying_ones(
    runtime: Runtime, engine: Engine
) -> None:
    planning = request_lane(engine, "product:shop/testing", apply=True)
    applying = request_lane(engine, "product:ledger/testing", apply=True)
    _dead_worker_took(engine, ["product:shop/testing"], OperationPhase.planning)
    _dead_worker_took(engine, ["product:ledger/testing"], OperationPhase.applying)

    resumed = resume(runtime)

    assert set(resumed.lapsed_claims) == {"product:shop/testing", "product:ledger/testing"}
    assert resumed.operations_requeued == [planning]
    assert resumed.operations_failed == [applying]
    again = operation_of(engine, planning)
    assert (again.status, again.phase) == ("pending", "queued")
    failed = operation_of(engine, applying)
    assert failed.status == "failed" and failed.error
    assert "plan-of-the-dead" in failed.error and "request the lane again" in failed.error
    with session_scope(engine) as session:
        rows = {row.lane: row for row in work_queue.queued(session)}
    assert rows["product:shop/testing"].claimed_by is None
    assert rows["product:shop/testing"].priority == WorkPriority.workflow


def test_resume_leaves_a_live_workers_operations_alone(runtime: Runtime, engine: Engine) -> None:
    working = request_lane(engine, "product:shop/testing", apply=True)
    with session_scope(engine, write_lock=True) as session:
        work_queue.claim(session, "live-worker", utcnow(), limit=10, hold_seconds=60)
        operations.advance(
            session,
            [working],
            utcnow(),
            status=OperationStatus.running,
            phase=OperationPhase.applying,
        )
    resumed = resume(runtime)
    assert resumed.operations_failed == [] and resumed.operations_requeued == []
    assert operation_of(engine, working).status == "running"


async def test_a_batch_that_crashes_backs_off_and_hands_its_operations_back(
    runtime: Runtime, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.loop import worker

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug in the middle of a batch")

    operation_id = request_lane(engine, "product:shop/testing", apply=True)
    monkeypatch.setattr(worker, "survey", broken)
    # No jitter and a long base, so the backoff is plainly in the future when checked.
    loop = fast_engine(
        runtime,
        draw=lambda low, high: high,
        loop_backoff_base_seconds=60.0,
        loop_backoff_cap_seconds=120.0,
    )
    await loop.run_once()
    again = operation_of(engine, operation_id)
    assert (again.status, again.phase) == ("pending", "queued"), "for the next worker"
    with session_scope(engine) as session:
        rows = {row.lane: row for row in work_queue.queued(session)}
    assert rows["product:shop/testing"].attempts == 1
    assert "a bug in the middle of a batch" in (rows["product:shop/testing"].last_error or "")
    assert rows["product:shop/testing"].due_at > utcnow(), "backing off, not straight back"


def test_a_request_while_a_lane_is_worked_keeps_it_due_after_a_retry(engine: Engine) -> None:
    """The worker decided "later" before the request came in: the request must not wait."""
    lane = "product:shop/testing"
    with session_scope(engine, write_lock=True) as session:
        work_queue.enqueue(session, [lane], WorkPriority.scheduled, "pass", utcnow())
        work_queue.claim(session, "w", utcnow(), limit=1, hold_seconds=60)
        work_queue.enqueue(session, [lane], WorkPriority.workflow, "workflow", utcnow())
        later = utcnow() + timedelta(hours=1)
        work_queue.finish_retry(session, "w", lane, retry_at=later, error="not yet")
        [row] = work_queue.queued(session)
    assert row.due_at <= utcnow() and row.priority == WorkPriority.workflow
    with session_scope(engine, write_lock=True) as session:  # and with no request meanwhile
        work_queue.claim(session, "w", utcnow(), limit=1, hold_seconds=60)
        work_queue.finish_retry(session, "w", lane, retry_at=later, error="not yet")
        [row] = work_queue.queued(session)
    assert row.due_at == later
