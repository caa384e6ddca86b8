"""The loop engine works the queue as a scheduled pass would, requests first."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.records.columns import utcnow
from reconciler.records.database import session_scope
from reconciler.records.work_queue import WorkPriority, enqueue, queued
from reconciler.runtime import Runtime
from tests.loop.support import fast_engine


async def test_a_pass_through_the_queue_applies_auto_safe_lanes_and_leaves_manual_ones(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    first = await fast_engine(runtime).run_once()
    outcomes = {r.lane: r.outcome for r in first.lanes}
    assert outcomes == {
        "product:docs-site/testing": "applied",
        "product:ledger/testing": "applied",
        "product:shop/testing": "applied",
        "product:docs-site/prod": "awaiting_operator",
        "product:ledger/prod": "awaiting_operator",
        "product:shop/prod": "awaiting_operator",
    }
    second = await fast_engine(runtime).run_once()
    again = {r.lane: r.outcome for r in second.lanes}
    assert again["product:shop/testing"] == "converged"
    assert again["product:shop/prod"] == "awaiting_operator"
    with session_scope(engine) as session:
        assert queued(session) == [], "every lane worked leaves the queue"


async def test_a_workflow_request_is_taken_before_scheduled_lanes(
    runtime: Runtime, engine: Engine
) -> None:
    with session_scope(engine) as session:
        enqueue(session, ["product:shop/prod"], WorkPriority.workflow, "workflow", utcnow())
    loop = fast_engine(runtime, loop_workers=1, loop_batch_size=1)
    await loop.run_once()
    worked = [interval.lane for interval in loop.work_log]
    assert worked[0] == "product:shop/prod"
    assert len(worked) == 6
