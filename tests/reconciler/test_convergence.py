"""Plan, apply, converge: the loop an operator runs, against the Dokploy emulator."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Risk
from reconciler.kinds.product.ops import Op
from reconciler.records import plan_store
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime
from tests.reconciler.conftest import Workload


async def test_plan_changes_nothing_in_dokploy(runtime: Runtime, emulator: Emulator) -> None:
    before = emulator.summary()
    plan = await compute_plan(runtime)
    assert plan.actions and not plan.blockers
    assert emulator.summary() == before  # Invariant 1: plan is the default, and harmless


async def test_apply_converges_and_the_next_plan_is_empty(
    runtime: Runtime, emulator: Emulator, workload: Workload
) -> None:
    plan = await compute_plan(runtime)
    ops = [a.op for a in plan.actions]
    # One project per product, created once although two lanes share it.
    assert ops.count(Op.create_project) == 3
    assert ops.count(Op.deploy) == 6
    assert {a.risk for a in plan.actions if a.op == Op.deploy and a.lane.endswith("/prod")} == {
        Risk.disruptive
    }
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, result
    assert all(r.result == "ok" for r in result.actions)
    assert "testing.shop.example.com/healthz" in workload.requests

    second = await compute_plan(runtime)
    assert second.actions == [] and second.blockers == []
    statuses = {row.lane: row for row in all_statuses(runtime.database)}
    assert set(statuses) == {
        "product:shop/testing",
        "product:shop/prod",
        "product:ledger/testing",
        "product:ledger/prod",
        "product:docs-site/testing",
        "product:docs-site/prod",
    }
    for row in statuses.values():
        ready = next(c for c in row.conditions if c["type"] == "Ready")
        assert ready["status"] == "True", row.conditions
        assert row.last_applied_plan == plan.plan_id
        assert row.observed_generation == 1


async def test_a_plan_applies_once(runtime: Runtime) -> None:
    plan = await compute_plan(runtime)
    assert (await apply_plan(runtime, plan.plan_id)).ok
    again = await apply_plan(runtime, plan.plan_id)
    assert again.status == "refused" and again.refusal is not None
    assert "is applied" in again.refusal.message


async def test_editing_one_lane_plans_only_that_lane(
    runtime: Runtime, engine: Engine, tmp_path: object
) -> None:
    from pathlib import Path

    from tests.conftest import EXAMPLES
    from tests.reconciler.conftest import store_fleet

    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    fleet = Path(str(tmp_path)) / "fleet"
    fleet.mkdir()
    for file in (EXAMPLES / "fleet").glob("*.yaml"):
        text = file.read_text()
        if file.name == "shop.yaml":
            text = text.replace("LOG_LEVEL: debug", "LOG_LEVEL: trace")
        (fleet / file.name).write_text(text)
    store_fleet(engine, fleet)
    plan = await compute_plan(runtime)
    assert {a.lane for a in plan.actions} == {"product:shop/testing"}
    assert [a.op for a in plan.actions] == [Op.set_env, Op.deploy]
    env_change = plan.actions[0].changes
    assert [(c.field, c.before, c.after) for c in env_change] == [
        ("env.LOG_LEVEL", "debug", "trace")
    ]
    assert (await apply_plan(runtime, plan.plan_id)).ok
    _, status = plan_store.load(engine, plan.plan_id)
    assert status == "applied"
