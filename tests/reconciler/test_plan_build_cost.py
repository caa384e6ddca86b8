"""What the cheaper plan build must not change: the stored plan is the plan, and the cycle
collector is left as the caller had it."""

from __future__ import annotations

import gc
import json
import threading
import weakref

from sqlalchemy.engine import Engine

from reconciler.core.collector import collector_paused
from reconciler.core.plan_formats import body_digest
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan, canonical_json, plan_digest
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
    assert json.loads(plan.stored_body_text()) == plan.stored_body()
    assert body_digest(plan.stored_body()) == plan.digest


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


def test_what_a_pause_made_skips_the_young_collections_and_its_cycles_are_still_freed() -> None:
    class Node:
        me: object = None

    gc.collect()  # no young collection is due but the one right after the pause
    with collector_paused():
        kept = [[index] for index in range(1_000)]
        looped = Node()
        looped.me = looped
        freed_by_collector = weakref.ref(looped)
        del looped
    oldest = {id(found) for found in gc.get_objects(generation=2)}
    assert all(id(made) in oldest for made in kept), "no young collection re-reads the build"
    gc.collect()
    assert freed_by_collector() is None, "nothing stays frozen: a full collection frees it"


async def test_an_assembled_action_is_the_action_its_stored_form_reads_back_as(
    runtime: Runtime,
) -> None:
    plan = await compute_plan(runtime)
    read_back = Plan.model_validate(plan.stored_body())
    for built, stored in zip(plan.actions, read_back.actions, strict=True):
        assert built == stored
        assert built.model_fields_set == stored.model_fields_set
        assert built.given({ref: "id-1" for ref in built.after}).known == (
            {ref: "id-1" for ref in built.after} or None
        )


def test_a_large_plans_digest_is_its_bodys_whatever_its_text_holds() -> None:
    # Over a megabyte of actions text, with two-byte characters across every boundary the
    # digest's pieces could have.
    actions = [{"reason": "é" * 1_000, "n": n} for n in range(1_500)]
    body = {
        "desired_revision": "r1",
        "generations": {"product:b": 2, "product:a": None},
        "actions": actions,
        "blockers": [],
        "fingerprints": {"z": "1", "a": "2"},
    }
    assert plan_digest(
        desired_revision="r1",
        actions=[],
        blockers=[],
        fingerprints={"z": "1", "a": "2"},
        generations={"product:b": 2, "product:a": None},
        actions_text=canonical_json(actions),
    ) == body_digest(body)


async def test_copying_one_planned_action_leaves_the_others_as_planned(runtime: Runtime) -> None:
    plan = await compute_plan(runtime)
    first, second = plan.actions[0], plan.actions[1]
    before = set(second.model_fields_set)
    given = first.model_copy(update={"known": {"project:x": "p-1"}})
    assert given.known == {"project:x": "p-1"} and first.known is None
    assert second.model_fields_set == before and "known" not in before
    assert Plan.model_validate(plan.stored_body()).actions == plan.actions
