"""Clean shutdown: no new work; in-flight work finishes within the grace period or is recorded
as interrupted; nothing is left `applying`; claims and leases are given back. And on SQLite
one process runs the loop."""

from __future__ import annotations

import anyio
import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.errors import LoopAlreadyRunning
from reconciler.loop.engine import LoopEngine
from reconciler.records import leases, plan_store
from reconciler.records.database import in_thread, session_scope
from reconciler.records.plan_store import PlanStatus
from reconciler.records.status import all_statuses
from reconciler.records.work_queue import queued
from reconciler.runtime import Runtime
from tests.loop.support import fast_engine, wait_for
from tests.support.workflow_requests import operation_of, request_lane

LANE = "product:shop/testing"


async def _stop_while_applying(
    loop: LoopEngine, engine: Engine, emulator: Emulator, operation_id: str, *, plans: int = 1
) -> None:
    """Runs `loop` and asks it to stop once the operation's deploy is under way and `plans`
    plans are applying (on a loaded machine the scheduled pass's can come seconds later)."""
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run, 3600.0)

        async def applying() -> bool:
            return (await in_thread(operation_of, engine, operation_id)).phase == "applying"

        async def deploying() -> bool:
            return bool(emulator.state.builds)

        async def plans_applying() -> bool:
            found = await in_thread(plan_store.with_status, engine, PlanStatus.applying)
            return len(found) >= plans

        await wait_for(applying)
        await wait_for(deploying)  # into the deploy
        await wait_for(plans_applying)
        loop.request_stop()


async def test_stopping_mid_apply_records_the_apply_as_interrupted(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    emulator.faults.stuck_deployment()  # the deploy never ends by itself
    operation_id = request_lane(engine, LANE, apply=True)
    loop = fast_engine(runtime, loop_shutdown_grace_seconds=0.3)
    with anyio.fail_after(30):
        # the request's plan and the scheduled pass's, whose deploys are stuck too
        await _stop_while_applying(loop, engine, emulator, operation_id, plans=2)

    assert plan_store.with_status(engine, PlanStatus.applying) == [], "nothing left applying"
    interrupted = plan_store.with_status(engine, PlanStatus.interrupted)
    # The request's plan, and the scheduled pass's (its deploys are stuck too).
    assert sorted((lanes for _, lanes in interrupted), key=len) == [
        [LANE],
        ["product:docs-site/testing", "product:ledger/testing"],
    ]
    stopped = operation_of(engine, operation_id)
    assert stopped.status == "failed" and stopped.error and "interrupted" in stopped.error
    assert leases.all_leases(engine) == [], "leases given back"
    with session_scope(engine) as session:
        assert all(row.claimed_by is None for row in queued(session)), "claims given back"
    status = {row.lane: row.conditions for row in all_statuses(engine)}[LANE]
    assert any(c["reason"] == "Interrupted" for c in status)


async def test_stopping_lets_in_flight_work_finish_within_the_grace_period(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    emulator.faults.latency(0.05, "application.deploy")
    operation_id = request_lane(engine, LANE, apply=True)
    loop = fast_engine(runtime, loop_shutdown_grace_seconds=20.0)
    with anyio.fail_after(30):
        await _stop_while_applying(loop, engine, emulator, operation_id)
    done = operation_of(engine, operation_id)
    assert done.status == "succeeded" and done.result and done.result["outcome"] == "applied"
    assert plan_store.with_status(engine, PlanStatus.applying) == []
    assert leases.all_leases(engine) == []


async def test_a_second_loop_on_one_sqlite_file_says_so(runtime: Runtime, engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL replicas share the loop")
    first = fast_engine(runtime)
    second = LoopEngine(runtime)
    async with anyio.create_task_group() as group:
        group.start_soon(first.run, 3600.0)

        async def held() -> bool:
            return bool(await in_thread(leases.all_leases, engine))

        await wait_for(held)
        with pytest.raises(LoopAlreadyRunning, match="only one process may run the loop"):
            await second.run_once()
        first.request_stop()


async def test_beside_the_api_being_cancelled_stops_the_loop_cleanly(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    """`setpoint serve` cancels its companions once the server stopped: the loop then gets
    its grace period like on SIGTERM, instead of being cut off mid-apply."""
    emulator.faults.latency(0.3, "application.deploy")
    operation_id = request_lane(engine, LANE, apply=True)
    loop = fast_engine(runtime, loop_shutdown_grace_seconds=20.0)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(loop.run_beside, 3600.0)

            async def applying() -> bool:
                return (await in_thread(operation_of, engine, operation_id)).phase == "applying"

            await wait_for(applying)
            group.cancel_scope.cancel()  # what the server does once it has stopped
    done = operation_of(engine, operation_id)
    assert done.status == "succeeded", "the apply in flight finished within the grace period"
    assert plan_store.with_status(engine, PlanStatus.applying) == []
    assert leases.all_leases(engine) == []
