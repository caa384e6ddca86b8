"""A deploy that fails is a lane state, not a deploy owed by every plan (issue 22, item 5).

DeployFailed records the deployment and when; the same configuration is deployed again only
after the lane's backoff, and a change to the desired configuration deploys at once. The
wording never says "the running deployment predates the current configuration" of a service
that never ran one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.reasons import DEPLOY_FAILED
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime
from tests.reconciler.conftest import owned_service_of, store_fleet
from tests.support.fleets import example_fleet
from tests.support.still_clock import StillClock

LANE = "product:shop/testing"


def _deploys(emulator: Emulator) -> int:
    return sum(len(builds) for builds in emulator.state.builds.values())


def _stalled(runtime: Runtime) -> dict[str, str]:
    row = next(r for r in all_statuses(runtime.database) if r.lane == LANE)
    return next(c for c in row.conditions if c["type"] == "Stalled")


async def _fail_first_deploy(runtime: Runtime, emulator: Emulator) -> None:
    emulator.faults.fail_next_deploy()
    result = await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)
    assert result.status == "waiting"
    deploy = next(a for a in result.actions if a.op == Op.deploy)
    assert deploy.result == "retry" and "DeployFailed: deployment " in deploy.message


async def test_a_failed_deploy_waits_out_its_backoff_then_deploys_again(
    runtime: Runtime, emulator: Emulator
) -> None:
    clock = StillClock(1_000_000.0)
    runtime = dataclasses.replace(runtime, clock=clock)
    await _fail_first_deploy(runtime, emulator)
    stalled = _stalled(runtime)
    assert stalled["status"] == "True" and stalled["reason"] == "deploy_failed"
    owned = owned_service_of(runtime.database, LANE)
    assert owned is not None
    failed = owned.facts["deploy_failed"]
    assert failed["failures"] == 1 and failed["retry_at"] == clock.now + 60.0
    assert failed["deployment_id"] in stalled["message"]
    deployed = _deploys(emulator)

    # Every plan and pass before the backoff ends: no deploy, the lane says why.
    for _ in range(2):
        clock.now += 20.0
        again = await compute_plan(runtime, [LANE])
        assert again.actions == []
        (blocker,) = again.blockers
        assert blocker.type == DEPLOY_FAILED.code
        assert "DeployFailed" in blocker.message and "predates" not in blocker.message
        assert failed["deployment_id"] in blocker.message
    assert _deploys(emulator) == deployed

    clock.now += 30.0  # 70 s after the failure: the backoff (60 s) is over
    retry = await compute_plan(runtime, [LANE])
    assert [a.op for a in retry.actions] == [Op.deploy]
    assert "backoff is over" in retry.actions[0].reason
    assert (await apply_plan(runtime, retry.plan_id)).ok
    assert _deploys(emulator) == deployed + 1
    assert (await compute_plan(runtime, [LANE])).actions == []


async def test_a_second_failure_doubles_the_backoff(runtime: Runtime, emulator: Emulator) -> None:
    clock = StillClock(2_000_000.0)
    runtime = dataclasses.replace(runtime, clock=clock)
    await _fail_first_deploy(runtime, emulator)
    clock.now += 61.0
    emulator.faults.fail_next_deploy()
    await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)
    owned = owned_service_of(runtime.database, LANE)
    assert owned is not None
    assert owned.facts["deploy_failed"]["failures"] == 2
    assert owned.facts["deploy_failed"]["retry_at"] == clock.now + 120.0


async def test_a_new_configuration_deploys_at_once_after_a_failure(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    clock = StillClock(3_000_000.0)
    runtime = dataclasses.replace(runtime, clock=clock)
    await _fail_first_deploy(runtime, emulator)
    deployed = _deploys(emulator)
    _change_shop_testing_env(runtime, tmp_path)
    changed = await compute_plan(runtime, [LANE])
    assert changed.blockers == []
    assert Op.deploy in [a.op for a in changed.actions]
    assert (await apply_plan(runtime, changed.plan_id)).ok
    assert _deploys(emulator) == deployed + 1


def _change_shop_testing_env(runtime: Runtime, tmp_path: Path) -> None:
    """Desired state changes: the shop's testing lane logs at another level."""
    fleet = example_fleet(tmp_path, edit=("shop.yaml", "LOG_LEVEL: debug", "LOG_LEVEL: trace"))
    store_fleet(runtime.database, fleet)
