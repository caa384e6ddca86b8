"""A failed health check is not a redeploy loop (issue 12, item 11).

A deploy that finishes but whose health check fails records the configuration it runs apart
from the failed check; the lane shows Stalled with the check and backs off; the next plan
checks again and never deploys the same configuration again.
"""

from __future__ import annotations

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, utcnow
from tests.reconciler.conftest import Workload

LANE = "product:shop/testing"


def _condition(runtime: Runtime, kind: str) -> dict[str, str]:
    row = next(r for r in all_statuses(runtime.database) if r.lane == LANE)
    return next(c for c in row.conditions if c["type"] == kind)


def _backoff(runtime: Runtime) -> float:
    row = next(r for r in all_statuses(runtime.database) if r.lane == LANE)
    assert row.retry_at is not None
    return (row.retry_at - utcnow()).total_seconds()


def _deploys(emulator: Emulator) -> int:
    return sum(len(builds) for builds in emulator.state.builds.values())


async def test_a_failing_health_check_stalls_the_lane_and_is_not_redeployed(
    runtime: Runtime, emulator: Emulator, workload: Workload
) -> None:
    workload.status = 503
    first = await compute_plan(runtime, [LANE])
    result = await apply_plan(runtime, first.plan_id)

    assert result.status == "waiting"
    deploy = next(a for a in result.actions if a.op == Op.deploy)
    assert deploy.result == "retry" and "health check" in deploy.message
    stalled = _condition(runtime, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "Degraded"
    assert "/healthz" in stalled["message"] and "503" in stalled["message"]
    assert "next try" in stalled["message"]
    assert 25 < _backoff(runtime) <= 30  # SETPOINT_HEALTH_BACKOFF_SECONDS, then doubling
    deployed = _deploys(emulator)

    again = await compute_plan(runtime, [LANE])
    assert [a.op for a in again.actions] == [Op.check_health]
    assert "checking again without redeploying" in again.actions[0].reason
    assert "predates" not in again.actions[0].reason
    still = await apply_plan(runtime, again.plan_id)
    assert still.status == "waiting" and _deploys(emulator) == deployed
    assert 55 < _backoff(runtime) <= 60
    assert "failed 1 time(s)" in again.actions[0].reason
    assert "failed 2 time(s)" in (await compute_plan(runtime, [LANE])).actions[0].reason


async def test_once_the_check_passes_the_lane_converges_without_a_deploy(
    runtime: Runtime, emulator: Emulator, workload: Workload
) -> None:
    workload.status = 503
    await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)
    deployed = _deploys(emulator)

    workload.status = 200
    check = await compute_plan(runtime, [LANE])
    assert (await apply_plan(runtime, check.plan_id)).ok
    assert _deploys(emulator) == deployed
    assert (await compute_plan(runtime, [LANE])).actions == []
    assert _condition(runtime, "Ready")["status"] == "True"
