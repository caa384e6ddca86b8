"""A deploy asked for whose outcome was never recorded (its worker died while it built) is
found again by its title, which carries the configuration it was asked for, and awaited:
never asked for a second time (issue 28, item 6)."""

from __future__ import annotations

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.outcomes import Facts
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.rule_input import deploy_title
from reconciler.records import ownership
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy, owned_service_of

LANE = "product:docs-site/testing"


async def _converged_then_outcome_lost(runtime: Runtime) -> tuple[str, str]:
    first = await compute_plan(runtime, [LANE])
    assert (await apply_plan(runtime, first.plan_id)).ok
    owned = owned_service_of(runtime.engine, LANE)
    assert owned is not None
    config_hash = str(owned.facts["deployed_config_hash"])
    # As if the last deploy's worker died before recording what it ran.
    with session_scope(runtime.engine) as session:
        ownership.apply_changes(
            session,
            kind="product",
            lane=LANE,
            claims=(),
            facts=(Facts(owned.ref, {"deployed_config_hash": None}),),
            releases=(),
        )
    return owned.object_id, config_hash


async def test_a_deploy_building_when_its_worker_died_is_awaited_not_repeated(
    runtime: Runtime, emulator: Emulator
) -> None:
    service_id, config_hash = await _converged_then_outcome_lost(runtime)
    # The dead worker's deploy: asked for with the lane's title, still building.
    emulator.faults.stuck_deployment(service_id)
    await dokploy(runtime).application_deploy(service_id, title=deploy_title(LANE, config_hash))
    builds = len(emulator.state.builds[service_id])

    plan = await compute_plan(runtime, [LANE])
    (deploy,) = plan.actions
    assert deploy.op == Op.deploy
    assert "is building; awaiting it, not deploying again" in deploy.reason
    emulator.faults.stuck_deployment(service_id, on=False)
    emulator.state.builds[service_id][-1].finishes_at = emulator.state.now()
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert len(emulator.state.builds[service_id]) == builds  # no second deploy
    assert (await compute_plan(runtime, [LANE])).actions == []


async def test_a_deploy_that_finished_unrecorded_is_recorded_not_repeated(
    runtime: Runtime, emulator: Emulator
) -> None:
    service_id, config_hash = await _converged_then_outcome_lost(runtime)
    await dokploy(runtime).application_deploy(service_id, title=deploy_title(LANE, config_hash))
    emulator.state.advance(5.0)
    builds = len(emulator.state.builds[service_id])

    plan = await compute_plan(runtime, [LANE])
    (deploy,) = plan.actions
    assert "finished but its outcome was not recorded" in deploy.reason
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert len(emulator.state.builds[service_id]) == builds
    owned = owned_service_of(runtime.engine, LANE)
    assert owned is not None and owned.facts["deployed_config_hash"] == config_hash
