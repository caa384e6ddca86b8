"""A deploy asked for whose outcome was never recorded (its worker died while it built) is
found again by its title, which carries the configuration it was asked for, and awaited:
never asked for a second time (issue 28, item 6). One still queued in Dokploy when its worker
was killed shows no deployment at all: the interrupted apply's intent says it was asked for,
and it is awaited for three deploy timeouts before it is taken for lost and asked again."""

from __future__ import annotations

import dataclasses
import time

import anyio
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.outcomes import Facts
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan
from reconciler.kinds.product.deploy_rules import ASKED_WINDOW_TIMEOUTS
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.rule_input import deploy_title
from reconciler.records import audit, ownership, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.plan_store import PlanStatus
from reconciler.runtime import Runtime, utcnow
from tests.reconciler.conftest import dokploy, owned_service_of
from tests.support.processes import crash_mid_apply
from tests.support.still_clock import StillClock

LANE = "product:docs-site/testing"


async def _converged_then_outcome_lost(runtime: Runtime) -> tuple[str, str]:
    first = await compute_plan(runtime, [LANE])
    assert (await apply_plan(runtime, first.plan_id)).ok
    owned = owned_service_of(runtime.database, LANE)
    assert owned is not None
    config_hash = str(owned.facts["deployed_config_hash"])
    # As if the last deploy's worker died before recording what it ran.
    with session_scope(runtime.database) as session:
        ownership.apply_changes(
            session,
            kind="product",
            lane=LANE,
            claims=(),
            facts=(Facts(owned.ref, {"deployed_config_hash": None}),),
            releases=(),
            now=runtime.now(),
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
    owned = owned_service_of(runtime.database, LANE)
    assert owned is not None and owned.facts["deployed_config_hash"] == config_hash


# -- a deploy still queued in Dokploy when its worker was killed (no deployment row yet) ----


async def _killed_while_queued(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> tuple[str, Plan]:
    """What a SIGKILL during the deploy wait leaves: the deploy's intent, the deploy asked
    for and waiting behind another build in Dokploy's queue, the plan `applying` under the
    leases of a dead process, and no result."""
    service_id, config_hash = await _converged_then_outcome_lost(runtime)
    crashed = await compute_plan(runtime, [LANE])
    (deploy,) = crashed.actions
    assert deploy.op == Op.deploy
    crash_mid_apply(engine, crashed.plan_id, [LANE])
    audit.record(
        engine,
        event=AuditEvent.action_intent,
        actor="ci:crashed",
        lane=LANE,
        plan_id=crashed.plan_id,
        action_id=deploy.id,
        data={
            "op": deploy.op,
            "effect": deploy.effect.value,
            "target": deploy.target,
            "risk": deploy.risk.value,
            "changes": [c.model_dump(mode="json") for c in deploy.changes],
        },
        at=utcnow(),
    )
    client = dokploy(runtime)
    emulator.state.build_seconds = 30.0  # somebody's long build holds the server
    await client.application_deploy(service_id, title="someone else's deploy")
    emulator.state.build_seconds = 0.05
    await client.application_deploy(service_id, title=deploy_title(LANE, config_hash))
    assert len(emulator.state.deployments(service_id)) < len(emulator.state.builds[service_id])
    return service_id, crashed


async def test_a_deploy_queued_when_its_worker_was_killed_is_awaited_not_asked_again(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    service_id, crashed = await _killed_while_queued(runtime, engine, emulator)
    builds = len(emulator.state.builds[service_id])

    plan = await compute_plan(runtime, [LANE])
    assert plan_store.load(engine, crashed.plan_id)[1] is PlanStatus.interrupted
    (deploy,) = plan.actions
    assert "waits in Dokploy's build queue; awaiting it, not asking again" in deploy.reason
    # The build ahead ends half a second into the apply; ours starts then.
    emulator.state.advance(
        emulator.state.builds[service_id][-1].starts_at - emulator.state.now() - 0.5
    )
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert len(emulator.state.builds[service_id]) == builds  # asked for once, in all
    assert (await compute_plan(runtime, [LANE])).actions == []


async def test_a_queued_deploy_whose_build_ran_before_the_apply_looked_is_taken_for_ours(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    """The plan saw the killed worker's deploy still queued; by the time the apply lists the
    service's deployments its build has started and ended. Created after it was asked for,
    that deployment is the one awaited: recorded at once, not waited on for the deploy
    timeout as if still queued, and never asked for again."""
    service_id, _ = await _killed_while_queued(runtime, engine, emulator)
    builds = len(emulator.state.builds[service_id])
    plan = await compute_plan(runtime, [LANE])
    (deploy,) = plan.actions
    assert "awaiting it, not asking again" in deploy.reason
    ours = emulator.state.builds[service_id][-1]

    def progress(message: str) -> None:
        # Past the apply's check that the plan is fresh, as the deploy starts: the build
        # ahead and ours both run and end before the deploy lists the deployments.
        if Op.deploy in message:
            emulator.state.advance(ours.starts_at - emulator.state.now() + 5.0)

    with anyio.fail_after(60):  # the queue's budget is the deploy timeout: 600 s
        applied = await apply_plan(dataclasses.replace(runtime, progress=progress), plan.plan_id)
    assert applied.ok, applied
    assert len(emulator.state.builds[service_id]) == builds
    assert (await compute_plan(runtime, [LANE])).actions == []


async def test_a_deploy_asked_for_by_a_killed_worker_is_asked_again_once_its_window_passed(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    service_id, _ = await _killed_while_queued(runtime, engine, emulator)
    emulator.state.advance(30.0)
    emulator.state.builds[service_id].pop()  # Dokploy lost it: it never started
    builds = len(emulator.state.builds[service_id])
    timeout = 600.0  # the lane's deployTimeoutSeconds (the default)
    clock = StillClock(time.time() + ASKED_WINDOW_TIMEOUTS * timeout - 60)
    runtime = dataclasses.replace(runtime, clock=clock)

    awaiting = await compute_plan(runtime, [LANE])
    assert "awaiting it, not asking again" in awaiting.actions[0].reason
    clock.now += 61  # past three deploy timeouts since it was asked for: taken for lost
    plan = await compute_plan(runtime, [LANE])
    (deploy,) = plan.actions
    assert "awaiting" not in deploy.reason
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert len(emulator.state.builds[service_id]) == builds + 1
    assert (await compute_plan(runtime, [LANE])).actions == []


async def test_a_deploy_waiting_for_its_build_slot_is_not_yet_announced(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    """Deploys of one server wait for its build slot before their intent is committed: a
    worker killed meanwhile leaves no intent of a deploy it never asked for, so the next
    plan deploys that lane at once instead of awaiting a deploy that does not exist."""
    plan = await compute_plan(runtime)
    deploys = [a for a in plan.actions if a.op == Op.deploy]
    servers = [a.params.get("server_id") for a in deploys]
    assert len(deploys) >= 2 and len(set(servers)) == 1  # one server, one slot (the default)
    emulator.faults.stuck_deployment()  # the first build holds the slot
    slot = dokploy(runtime).build_slots(servers[0])
    announced: list[int] = []

    async def watch() -> None:
        # Polled until the first build runs and every other deploy waits at the slot: what
        # an intent written before that wait would show is committed by then.
        with anyio.fail_after(30):
            waiting = len(deploys) - 1
            while not emulator.state.builds or slot.statistics().tasks_waiting < waiting:  # noqa: ASYNC110 -- a poll of state
                await anyio.sleep(0.01)
        with session_scope(engine) as session:
            intents = audit.iter_records(
                session, plan_id=plan.plan_id, event=AuditEvent.action_intent
            )
            announced.append(sum(1 for r in intents if r.data["op"] == Op.deploy))
        emulator.faults.stuck_deployment(on=False)
        for builds in emulator.state.builds.values():
            builds[-1].finishes_at = emulator.state.now()

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        assert (await apply_plan(runtime, plan.plan_id)).ok
    assert announced == [1]  # the one deploy asked for; the others waited unannounced
