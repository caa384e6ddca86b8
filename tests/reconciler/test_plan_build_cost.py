"""What the cheaper plan build must not change: the stored plan is the plan, and the cycle
collector is left as the caller had it."""

from __future__ import annotations

import gc
import threading

from sqlalchemy.engine import Engine

from reconciler.core.collector import collector_paused
from reconciler.core.planning import compute_plan
from reconciler.records import plan_store
from reconciler.runtime import Runtime


async def test_a_stored_plan_reads_back_as_the_plan_that_was_computed(
    runtime: Runtime, engine: Engine
) -> None:
    plan = await compute_plan(runtime)
    assert plan.actions, "the example fleet needs creating"
    stored, _ = plan_store.load(engine, plan.plan_id)
    assert stored == plan
    assert plan.stored_body() == plan.model_dump(mode="json")


async def test_a_copy_with_other_actions_stores_its_own(runtime: Runtime) -> None:
    plan = await compute_plan(runtime)
    fewer = plan.model_copy(update={"actions": plan.actions[:1]})
    assert fewer.stored_body()["actions"] == [plan.actions[0].model_dump(mode="json")]


async def test_planning_leaves_the_collector_as_it_found_it(runtime: Runtime) -> None:
    assert gc.isenabled()
    await compute_plan(runtime)
    assert gc.isenabled(), "enabled again after the build"
    gc.disable()
    try:
        await compute_plan(runtime)
        assert not gc.isenabled(), "a caller's own pause is kept"
    finally:
        gc.enable()


def test_overlapping_pauses_enable_the_collector_when_the_last_one_ends() -> None:
    inner_started, outer_may_end = threading.Event(), threading.Event()
    seen_inside: list[bool] = []

    def other_thread() -> None:
        with collector_paused():
            inner_started.set()
            outer_may_end.wait(5)
            seen_inside.append(gc.isenabled())

    with collector_paused():
        worker = threading.Thread(target=other_thread)
        worker.start()
        inner_started.wait(5)
    assert not gc.isenabled(), "the other thread's pause is still on"
    outer_may_end.set()
    worker.join(5)
    assert seen_inside == [False]
    assert gc.isenabled()
