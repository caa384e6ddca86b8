"""A runner pool's lifecycle through scheduled passes: created and seen online, drained
while busy only once its job ends, restarted, removed; strangers never touched."""

from __future__ import annotations

from tests.runners.conftest import Rig, outcomes


async def test_a_lane_is_created_and_comes_online_with_canonical_labels(rig: Rig) -> None:
    rig.declare(count=(1, 2))
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "applied", "runner:ci/2": "converged"}, [
        r.detail for r in report.lanes
    ]
    runner = rig.runners()["setpoint-ci-1"]
    assert runner.status == "online"
    labels = {name for name, _ in runner.labels}
    assert {"setpoint-managed", "setpoint-pool:ci", "self-hosted", "linux", "shop"} <= labels
    assert rig.applications() == {"setpoint-ci-1": "done"}
    again = await rig.reconcile()
    assert set(outcomes(again).values()) == {"converged"}
