"""A deploy never holds its worker for the build (DESIGN invariant 17, issue 23): under a loop
(`Runtime.parks_long_waits`) the deploy is asked for and looked at for a moment, then its lane
is parked (Waiting, with a due time) with what the look found recorded; a later plan awaits
that deployment, never asks for it again, and finishes the lane as a waiting worker would
have: done and healthy is Ready, error is DeployFailed, past the timeout the apply fails."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.core.outcomes import ActionResult
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.reasons import DEPLOY_FAILED
from reconciler.records import status
from reconciler.runtime import Runtime, ShiftedClock
from tests.reconciler.conftest import Workload, owned_service_of, store_fleet
from tests.support.fleets import converge, example_fleet

LANE = "product:shop/testing"  # an application with a health check
BUILD_SECONDS = 120.0  # on the emulator's clock: no look sees it end unless a test moves it


async def _parked(
    runtime: Runtime, emulator: Emulator, tmp_path: Path, *, failing: bool = False
) -> tuple[Runtime, str, ApplyResult]:
    """The lane converged, then given a new image, applied under a loop while Dokploy's
    builds take two minutes."""
    await converge(runtime, [LANE])
    owned = owned_service_of(runtime.database, LANE)
    assert owned is not None
    edit = ("shop.yaml", "ghcr.io/acme/shop:main", "ghcr.io/acme/shop:v2")
    store_fleet(runtime.database, example_fleet(tmp_path, edit=edit))
    emulator.state.build_seconds = BUILD_SECONDS
    if failing:  # the build asked for now will end in error
        emulator.faults.fail_next_deploy()
    looping = dataclasses.replace(runtime, parks_long_waits=True, clock=ShiftedClock())
    plan = await compute_plan(looping, [LANE])
    (deploy,) = [a for a in plan.actions if a.op == Op.deploy]
    assert deploy.params.get("await") is None
    parked = await apply_plan(looping, plan.plan_id)
    return looping, owned.object_id, parked


def _ready(runtime: Runtime) -> dict[str, Any]:
    (row,) = [r for r in status.all_statuses(runtime.database) if r.lane == LANE]
    conditions = {c["type"]: c for c in row.conditions}
    return {"ready": conditions["Ready"], "stalled": conditions["Stalled"], "row": row}


async def _look_again(runtime: Runtime) -> ApplyResult:
    """The loop's next look at the parked lane: a plan that awaits the deployment."""
    plan = await compute_plan(runtime, [LANE])
    (deploy,) = plan.actions
    assert deploy.op == Op.deploy and deploy.params["await"]["deployment_id"], deploy.params
    assert "not deploying again" in deploy.reason
    return await apply_plan(runtime, plan.plan_id)


async def test_a_deploy_under_a_loop_parks_its_lane_while_it_builds(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id, parked = await _parked(runtime, emulator, tmp_path)
    report = parked.actions[-1]
    assert parked.status == "waiting" and report.result is ActionResult.retry
    assert "is building" in report.message and "parked" in report.message
    seen = _ready(looping)
    assert seen["ready"]["status"] == "False" and seen["ready"]["reason"] == "Waiting"
    assert seen["stalled"]["status"] == "False"
    assert seen["row"].retry_at is not None  # the loop's due time for the next look
    building = emulator.state.builds[service_id][-1]
    assert building.started and not building.settled
    # A look while it still builds parks the lane again and asks for nothing.
    builds = len(emulator.state.builds[service_id])
    again = await _look_again(looping)
    assert again.status == "waiting"
    assert len(emulator.state.builds[service_id]) == builds


async def test_a_parked_deploy_that_ends_done_turns_the_lane_ready_after_its_health_check(
    runtime: Runtime, emulator: Emulator, workload: Workload, tmp_path: Path
) -> None:
    looping, service_id, _ = await _parked(runtime, emulator, tmp_path)
    builds = len(emulator.state.builds[service_id])
    checked = len(workload.requests)
    emulator.state.advance(BUILD_SECONDS + 1)  # the build ends, done
    finished = await _look_again(looping)
    assert finished.ok, [(a.action_id, a.message) for a in finished.actions]
    assert "health check(s) passed" in finished.actions[0].message
    assert len(workload.requests) > checked  # checked after the build, not before
    assert len(emulator.state.builds[service_id]) == builds  # never asked for twice
    assert _ready(looping)["ready"]["status"] == "True"
    owned = owned_service_of(looping.database, LANE)
    assert owned is not None and owned.facts["deployed_config_hash"]
    assert owned.facts.get("deploy_asked") is None
    assert (await compute_plan(looping, [LANE])).actions == []


async def test_a_parked_deploy_that_ends_error_is_deploy_failed(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id, _ = await _parked(runtime, emulator, tmp_path, failing=True)
    builds = len(emulator.state.builds[service_id])
    emulator.state.advance(BUILD_SECONDS + 1)
    failed = await _look_again(looping)
    (report,) = failed.actions
    assert failed.status == "waiting" and "DeployFailed: deployment" in report.message
    assert report.evidence  # the failed deployment's row and log tail, as without a park
    seen = _ready(looping)
    assert seen["stalled"]["status"] == "True" and seen["stalled"]["reason"] == DEPLOY_FAILED.code
    assert len(emulator.state.builds[service_id]) == builds
    owned = owned_service_of(looping.database, LANE)
    assert owned is not None and owned.facts["deploy_failed"]["status"] == "error"
    # Its backoff holds the next deploy of this configuration back, as without a park.
    held = await compute_plan(looping, [LANE])
    assert not held.actions and held.blockers[0].type == DEPLOY_FAILED.code


async def test_a_parked_build_past_its_deploy_timeout_fails_the_apply(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id, _ = await _parked(runtime, emulator, tmp_path)
    builds = len(emulator.state.builds[service_id])
    timeout = float((await compute_plan(looping, [LANE])).actions[0].params["timeout_seconds"])
    assert isinstance(looping.clock, ShiftedClock)
    looping.clock.advance(timeout + 1)  # the runtime's clock: the build still runs
    timed_out = await _look_again(looping)
    (report,) = timed_out.actions
    assert timed_out.status == "failed" and report.result is ActionResult.failed
    assert "DeployTimeout" in report.message and "after its build started" in report.message
    assert len(emulator.state.builds[service_id]) == builds
