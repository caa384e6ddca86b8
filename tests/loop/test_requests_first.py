"""A workflow's request on a busy loop starts at once (issue 23): it is heard the moment it
is queued, not at the loop's next poll; it is claimed and surveyed alone, by a worker of its
own, however long the other workers' batches take; and scheduled steps give way to it."""

from __future__ import annotations

import anyio
import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.loop import worker
from reconciler.loop.worker import RequestsFirst
from reconciler.records import work_queue
from reconciler.records.database import in_thread, session_scope
from reconciler.records.work_queue import WorkPriority
from reconciler.runtime import Runtime, utcnow
from tests.loop.support import fast_engine, wait_for
from tests.support.workflow_requests import operation_of, request_lane

POLL = 120.0  # an idle worker looks this seldom: a request must not wait for it
FINAL = {"succeeded", "failed", "blocked"}
ANSWER_WITHIN = 10.0  # seconds; far below POLL and below the stuck survey's hang
HANG = 25.0
LEDGER = "product:ledger/testing"  # a scheduled lane's survey hangs this long (below the client's timeout)


def _queue_empty(engine: Engine) -> bool:
    with session_scope(engine) as session:
        return not work_queue.queued(session)


def _claimed(engine: Engine) -> set[str]:
    with session_scope(engine) as session:
        return work_queue.claimed_lanes(session, utcnow())


async def _answered(engine: Engine, operation: str) -> float:
    """Seconds until the operation ends."""
    started = anyio.current_time()

    async def ended() -> bool:
        return (await in_thread(operation_of, engine, operation)).status in FINAL

    await wait_for(ended, timeout=POLL / 2)
    return anyio.current_time() - started


async def test_an_idle_loop_starts_a_request_when_it_is_queued_not_at_its_next_poll(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    await fast_engine(runtime).run_once()  # converged: the loop has nothing to do
    loop = fast_engine(runtime, loop_workers=1, loop_poll_seconds=POLL)
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run, 3600.0)

        async def ticked() -> bool:  # the worker looked (nothing was due) and waits a poll
            return not await in_thread(_queue_empty, engine)

        await wait_for(ticked, timeout=60)  # the tick queued the pass's lanes after that
        asked = await in_thread(request_lane, engine, "product:shop/testing", apply=True)
        took = await _answered(engine, asked)
        loop.request_stop()
    done = operation_of(engine, asked)
    assert done.status == "succeeded", (done.result, done.error)
    assert took < ANSWER_WITHIN, f"the request took {took:.1f} s (the poll is {POLL:g} s)"


async def test_a_request_starts_while_every_worker_is_held_by_a_scheduled_batch(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    """One worker, batches of one: its batch's survey of a ledger lane hangs (Dokploy does
    not answer for HANG seconds). A request for shop is answered meanwhile."""
    await fast_engine(runtime).run_once()
    # Ledger's lanes are composes; shop's request reads no compose.
    emulator.faults.timeout("compose.one", seconds=HANG, when="after", count=3)
    with session_scope(engine) as session:  # what the worker claims first
        work_queue.enqueue(session, [LEDGER], WorkPriority.scheduled, "scheduled", utcnow())
    loop = fast_engine(runtime, loop_workers=1, loop_batch_size=1, loop_poll_seconds=POLL)
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run, 3600.0)

        async def ledger_held() -> bool:
            claimed = await in_thread(_claimed, engine)
            return LEDGER in claimed

        await wait_for(ledger_held, timeout=60)
        asked = await in_thread(request_lane, engine, "product:shop/testing", apply=True)
        took = await _answered(engine, asked)
        still_held = await ledger_held()
        group.cancel_scope.cancel()
    done = operation_of(engine, asked)
    assert done.status == "succeeded", (done.result, done.error)
    assert took < ANSWER_WITHIN, f"the request took {took:.1f} s"
    assert still_held, "the ledger lane's batch was still surveying when the request ended"


async def test_a_scheduled_step_waits_for_requests_being_started_but_not_for_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker, "REQUESTS_FIRST_SECONDS", 0.5)
    first = RequestsFirst()
    with anyio.fail_after(5):
        await first.give_way()  # no request: at once
    first.begin()
    first.begin()
    went: list[str] = []

    async def scheduled_step() -> None:
        await first.give_way()
        went.append("scheduled")

    async with anyio.create_task_group() as group:
        group.start_soon(scheduled_step)
        await anyio.sleep(0.05)
        first.end()
        await anyio.sleep(0.05)
        assert went == [], "one request is still being started"
        first.end()
    assert went == ["scheduled"]
    first.begin()  # a request that never says it started: the step goes on after a while
    started = anyio.current_time()
    await first.give_way()
    assert 0.4 <= anyio.current_time() - started < 5
