"""What the cheaper plan build must not change: the stored plan is the plan, and the cycle
collector is left as the caller had it."""

from __future__ import annotations

import gc
import hashlib
import json
import threading
import weakref
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from reconciler.core.assembly import KindFacts, build_plan
from reconciler.core.collector import collector_paused, heap_frozen
from reconciler.core.plan_formats import body_digest
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlastRadiusGuard, Change, Plan, canonical_json, plan_digest
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.lanes import DesiredDomain, DesiredHealthCheck, ProductLane
from reconciler.kinds.product.observed import ObservedProductLane
from reconciler.kinds.product.ops import PRODUCT_OPS, Op
from reconciler.kinds.product.params import DeleteService
from reconciler.kinds.product.policy import ApplyPolicy
from reconciler.kinds.product.rule_input import SecretFacts
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


async def test_planning_leaves_nothing_frozen(runtime: Runtime) -> None:
    await compute_plan(runtime)
    assert gc.get_freeze_count() == 0, "a full collection can free anything the pass made"


def test_what_a_pause_makes_while_the_heap_is_frozen_stays_frozen_until_the_freeze_ends() -> None:
    class Node:
        me: object = None

    with heap_frozen():
        loaded = [[index] for index in range(100)]
        with collector_paused():
            looped = Node()
            looped.me = looped
            freed_by_collector = weakref.ref(looped)
            del looped
        assert gc.isenabled()
        frozen_now = gc.get_freeze_count()
        assert frozen_now >= len(loaded), "the loaded objects and the pause's are left out"
        gc.collect()
        assert freed_by_collector() is not None, "no collection walks a frozen object"
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert freed_by_collector() is None, "once the freeze ends, its cycles are freed"


def _lane(product: str, name: str, env: dict[str, str]) -> ProductLane:
    host = f"{product}-{name}.example.com"
    return ProductLane(
        lane=f"product:{product}/{name}",
        product=product,
        lane_name=name,
        generation=3,
        target="application",
        project=product,
        environment="production",
        service_name=f"{product}-{name}",
        image="registry.example.com/app:1",
        compose_file=None,
        env=env,
        secrets={},
        domains=(DesiredDomain(host, "/", 80, True, None),),
        replicas=2,
        health_checks=(DesiredHealthCheck(f"https://{host}/health", 200, 5.0),),
        deploy_timeout_seconds=600.0,
        apply_policy=ApplyPolicy.manual,
        protect=False,
        prod=name == "prod",
    )


def test_the_same_diffs_give_the_same_digest_and_stored_text_as_before() -> None:
    # Pinned values, computed before the build was made cheaper (issue 26, plancpu4): a plan
    # reviewed under one version of Setpoint is the very plan another applies.
    lanes = [
        _lane("shop", "testing", {"B": "2", "A": "café ✓"}),
        _lane("shop", "prod", {"A": "1"}),
        _lane("blog", "prod", {}),
    ]
    facts = SecretFacts(salt="golden", desired={})
    diffs = [diff_product_lane(ln.lane, ln, ObservedProductLane(), facts, now=0.0) for ln in lanes]
    gone = ProposedAction(
        key="delete",
        op=Op.delete_service,
        target="dokploy:application/old-prod",
        reason="no longer desired",
        changes=[Change(field="service", before={"z": [1, 2.5, None], "a": "ü"}, after=None)],
        params=DeleteService(service_type="application", service_id="app-1"),
    )
    diffs.append(
        LaneDiff(lane="product:old/prod", actions=[gone], notes=["product:old/prod: a note"])
    )
    plan = build_plan(
        diffs=diffs,
        kinds={"product": KindFacts(PRODUCT_OPS, BlastRadiusGuard(5, 1.0), 4)},
        fingerprints={"service:b": "f2", "service:a": "f1"},
        generations={
            "product:shop/testing": 3,
            "product:shop/prod": 3,
            "product:blog/prod": 3,
            "product:old/prod": None,
        },
        desired_revision="rev-1",
        created_by="golden",
        now=datetime(2026, 12, 8, 1, 0, tzinfo=UTC),
        ttl=timedelta(minutes=30),
        plan_id="plan-000000000001",
    )
    assert len(plan.actions) == 20
    assert plan.digest == "c978965811fd61a5737ae0b124a23f4aad1deaa2c0d67c29df596d4773c930cb"
    stored = hashlib.sha256(plan.stored_body_text().encode()).hexdigest()
    assert stored == "ec5a29a62bff558bd109a063349caaadf639a46a6866f115d016b04748ab65d5"
