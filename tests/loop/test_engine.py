"""The loop engine works the queue as a scheduled pass would, requests first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.loop.passes import PassReport, reconcile_pass
from reconciler.records import status, work_queue
from reconciler.records.database import session_scope
from reconciler.records.work_queue import WorkPriority, enqueue, queued
from reconciler.runtime import Runtime, utcnow
from tests.loop.support import count_calls, fast_engine


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


async def test_a_quiet_fleet_pass_costs_one_preflight_and_one_listing_for_all_its_batches(
    runtime: Runtime, engine: Engine
) -> None:
    await fast_engine(runtime).run_once()  # converge (manual lanes stay awaiting)
    from reconciler.core.apply import apply_plan
    from reconciler.core.planning import compute_plan

    assert (await apply_plan(runtime, (await compute_plan(runtime)).plan_id)).ok
    await fast_engine(runtime).run_once()  # settles the status rows once
    calls = count_calls(runtime)
    runtime.clock = lambda: 1_000.0  # a context's age (loop/contexts.py) is no question here
    loop = fast_engine(runtime, loop_workers=2, loop_batch_size=2)
    report = await loop.run_once()
    assert {r.outcome for r in report.lanes} == {"converged"}
    lanes = len(report.lanes)
    assert loop.work_log and len({i.started for i in loop.work_log}) == 3, "three batches"
    # The lower bound of one observation is 2 + N (a preflight, a listing, a read per lane);
    # the loop may spend 2 more, never 2 per batch.
    assert len(calls) <= 2 + lanes + 2
    assert calls.count("user.get") == 1 and calls.count("project.all") == 1
    assert calls.count("application.one") + calls.count("compose.one") == lanes
    assert loop.contexts.built == 1, "the batches of a quiet pass share one context"


def _loop_pass(runtime: Runtime) -> Awaitable[PassReport]:
    return fast_engine(runtime, loop_batch_size=2).run_once()


@pytest.mark.parametrize("run_pass", [_loop_pass, reconcile_pass], ids=["loop", "single"])
async def test_a_pass_forgets_the_status_of_lanes_no_kind_lists_and_keeps_the_rest(
    runtime: Runtime, engine: Engine, run_pass: Callable[[Runtime], Awaitable[PassReport]]
) -> None:
    # Storing a plan forgets such rows too; by the third pass no plan is stored.
    await run_pass(runtime)  # applies the auto-safe lanes
    await run_pass(runtime)  # plans the manual lanes from what the first one applied
    gone, unloaded = "product:pruned-long-ago/testing", "elsewhere:not-loaded-here"
    for lane in (gone, unloaded):
        status.record(engine, lane, status.converged(), now=utcnow())
    report = await run_pass(runtime)
    assert report.plans_stored == 0
    shown = {row.lane for row in status.all_statuses(engine)}
    assert gone not in shown, "a lane no kind lists describes nothing"
    assert unloaded in shown, "a kind this deployment did not load keeps its lanes' rows"
    assert "product:shop/testing" in shown


async def test_a_providers_rate_limit_spaces_its_calls(runtime: Runtime) -> None:
    calls = count_calls(runtime)
    loop = fast_engine(runtime, provider_rate_limits={"dokploy": 100.0}, provider_rate_burst=1)
    started = anyio.current_time()
    await loop.run_once()
    elapsed = anyio.current_time() - started
    assert len(calls) > 20
    assert elapsed >= (len(calls) - 1) / 100.0 * 0.9, "no faster than 100 calls a second"
    assert loop.buckets["dokploy"].waited > 0


async def test_with_replicas_one_timer_queues_each_pass(runtime: Runtime, engine: Engine) -> None:
    first, second = fast_engine(runtime), fast_engine(runtime)
    await first._scheduled_tick(60.0)
    with session_scope(engine) as session:
        assert len(queued(session)) == 6
        work_queue.claim(session, "somebody", utcnow(), limit=10, hold_seconds=60)
        for row in queued(session):
            work_queue.finish_done(session, "somebody", row.lane)
    await second._scheduled_tick(60.0)  # another replica's tick within the interval
    with session_scope(engine) as session:
        assert queued(session) == [], "the lanes were not queued a second time"
    await first._scheduled_tick(60.0)  # the timer's holder ticks again: the next pass
    with session_scope(engine) as session:
        assert len(queued(session)) == 6
