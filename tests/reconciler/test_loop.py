"""Scheduled passes apply only what lane policy allows; everything else waits for an operator."""

from __future__ import annotations

from providers.dokploy.emulator import Emulator
from reconciler.loop.passes import reconcile_pass
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy


async def test_a_pass_applies_auto_safe_lanes_and_leaves_manual_ones(
    runtime: Runtime, emulator: Emulator
) -> None:
    first = await reconcile_pass(runtime)
    outcomes = {r.lane: r.outcome for r in first.lanes}
    assert outcomes == {
        "product:docs-site/testing": "applied",
        "product:ledger/testing": "applied",
        "product:shop/testing": "applied",
        "product:docs-site/prod": "awaiting_operator",
        "product:ledger/prod": "awaiting_operator",
        "product:shop/prod": "awaiting_operator",
    }
    names = emulator.summary()["applications"] + emulator.summary()["compose"]
    assert "shop-testing" in names and "shop-prod" not in names

    second = await reconcile_pass(runtime)
    again = {r.lane: r.outcome for r in second.lanes}
    assert again["product:shop/testing"] == "converged"
    assert again["product:shop/prod"] == "awaiting_operator"


async def test_a_blocked_lane_does_not_hold_up_the_others(
    runtime: Runtime, emulator: Emulator
) -> None:
    created = await dokploy(runtime).project_create("docs")
    environment = await dokploy(runtime).environment_create(created.project.project_id, "testing")
    await dokploy(runtime).application_create("docs-site-testing", environment.environment_id)
    report = await reconcile_pass(runtime)
    outcomes = {r.lane: r.outcome for r in report.lanes}
    assert outcomes["product:docs-site/testing"] == "blocked"
    assert outcomes["product:shop/testing"] == "applied"


async def test_a_scheduler_keeps_one_live_plan_per_lane_and_never_retires_an_operators(
    runtime: Runtime,
) -> None:
    from reconciler.core.planning import compute_plan
    from reconciler.records import plan_store

    operator_plan = await compute_plan(runtime, ["product:shop/prod"])
    runtime.actor = "scheduler"
    first = await reconcile_pass(runtime)
    second = await reconcile_pass(runtime)
    old = next(r.plan_id for r in first.lanes if r.lane == "product:shop/prod")
    new = next(r.plan_id for r in second.lanes if r.lane == "product:shop/prod")
    assert plan_store.load(runtime.engine, old)[1] == "superseded"
    assert plan_store.load(runtime.engine, new)[1] == "pending"
    assert plan_store.load(runtime.engine, operator_plan.plan_id)[1] == "pending"
