"""A runner pool's lifecycle through scheduled passes: created and seen online, drained
while busy only once its job ends, restarted, removed; strangers never touched."""

from __future__ import annotations

import httpx

from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from tests.reconciler.conftest import store_fleet
from tests.runners.conftest import DOKPLOY_KEY, IDLE_WINDOW, Rig, every_row, outcomes
from tests.support.secret_scan import assert_no_secrets


def _dokploy_url(rig: Rig) -> str:
    return rig.dokploy_url


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


async def test_a_busy_pool_grows_and_shrinks_back_once_idle_twice(rig: Rig) -> None:
    rig.declare(count=(1, 2), allow="[create, drain]")
    await rig.reconcile()
    first = rig.runners()["setpoint-ci-1"]
    rig.github.set_runner(first.id, busy=True)  # a job started on the only runner
    grown = await rig.reconcile()
    assert outcomes(grown)["runner:ci/2"] == "applied"
    assert rig.runners()["setpoint-ci-2"].status == "online"

    rig.github.set_runner(first.id, busy=False)
    once = await rig.reconcile()  # idle once: watched, not stopped
    assert outcomes(once)["runner:ci/2"] == "waiting"
    assert "setpoint-ci-2" in rig.runners()
    rig.clock.advance(IDLE_WINDOW + 1)
    twice = await rig.reconcile()
    assert outcomes(twice)["runner:ci/2"] == "applied"
    assert "setpoint-ci-2" not in rig.runners()  # deregistered first
    assert rig.applications()["setpoint-ci-2"] == "idle"  # then stopped; kept (no `remove`)
    assert rig.runners()["setpoint-ci-1"].status == "online"


async def test_drain_of_a_runner_that_took_a_job_waits_and_completes_when_it_ends(
    rig: Rig,
) -> None:
    rig.declare(count=(1, 2), allow="[create, drain]")
    await rig.reconcile()
    first = rig.runners()["setpoint-ci-1"]
    rig.github.set_runner(first.id, busy=True)
    await rig.reconcile()  # grows to two
    second = rig.runners()["setpoint-ci-2"]
    rig.github.set_runner(first.id, busy=False)

    plan = await compute_plan(rig.runtime)  # the operator's plan: drain the idle spare
    assert [a.op for a in plan.actions] == ["drain"]
    rig.github.set_runner(second.id, busy=True)  # ...which picks up a job meanwhile
    result = await apply_plan(rig.runtime, plan.plan_id)
    assert result.status == "waiting"
    assert rig.runners()["setpoint-ci-2"].busy  # never forced
    assert rig.applications()["setpoint-ci-2"] == "done"
    # ...but it takes no further job: the pool's labels are gone until it is deregistered.
    assert _labels(rig, "setpoint-ci-2") >= {"setpoint-draining"}
    assert "shop" not in _labels(rig, "setpoint-ci-2")

    rig.github.set_runner(second.id, busy=False)  # the job ends
    rig.clock.advance(1)  # past the busy lane's retry time
    seen_idle = await rig.reconcile()
    assert outcomes(seen_idle)["runner:ci/2"] == "waiting"  # idle once
    rig.clock.advance(IDLE_WINDOW + 1)
    drained = await rig.reconcile()
    assert outcomes(drained)["runner:ci/2"] == "applied"
    assert "setpoint-ci-2" not in rig.runners()
    assert rig.applications()["setpoint-ci-2"] == "idle"


async def test_a_draining_runner_needed_again_gets_its_labels_back(rig: Rig) -> None:
    rig.declare(count=(1, 2), allow="[create, drain]")
    await rig.reconcile()
    first = rig.runners()["setpoint-ci-1"]
    rig.github.set_runner(first.id, busy=True)
    await rig.reconcile()
    second = rig.runners()["setpoint-ci-2"]
    rig.github.set_runner(first.id, busy=False)
    plan = await compute_plan(rig.runtime)
    rig.github.set_runner(second.id, busy=True)
    assert (await apply_plan(rig.runtime, plan.plan_id)).status == "waiting"
    assert "shop" not in _labels(rig, "setpoint-ci-2")

    rig.github.set_runner(first.id, busy=True)  # both busy: the pool wants both again
    rig.clock.advance(1)  # past the busy lane's retry time
    report = await rig.reconcile()
    assert outcomes(report)["runner:ci/2"] == "applied"
    assert {"shop", "setpoint-pool:ci"} <= _labels(rig, "setpoint-ci-2")
    assert "setpoint-draining" not in _labels(rig, "setpoint-ci-2")


async def test_a_pool_whose_labels_change_relabels_its_runners(rig: Rig) -> None:
    rig.declare(count=(1, 1))
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"].id
    rig.declare(count=(1, 1), labels="[self-hosted, linux, shop, gpu]")
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "applied"}
    assert "gpu" in _labels(rig, "setpoint-ci-1")
    assert rig.runners()["setpoint-ci-1"].id == before  # the same runner, not a new one


async def test_a_new_runner_image_restarts_idle_runners_onto_it(rig: Rig) -> None:
    rig.declare(count=(1, 1))
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"].id
    rig.github.set_runner(before, busy=True)
    rig.declare(count=(1, 1), image="ghcr.io/actions/actions-runner:2.330.0")
    busy = await rig.reconcile()
    assert outcomes(busy) == {"runner:ci/1": "converged"}  # mid-job: left alone
    rig.github.set_runner(before, busy=False)
    once = await rig.reconcile()
    assert outcomes(once) == {"runner:ci/1": "waiting"}  # idle once
    rig.clock.advance(IDLE_WINDOW + 1)
    restarted = await rig.reconcile()
    assert outcomes(restarted) == {"runner:ci/1": "applied"}
    app = next(iter(rig.dokploy.state.applications.values()))
    assert app["dockerImage"] == "ghcr.io/actions/actions-runner:2.330.0"
    after = rig.runners()["setpoint-ci-1"]
    assert after.status == "online" and after.id != before


def _labels(rig: Rig, name: str) -> set[str]:
    return {label for label, _ in rig.runners()[name].labels}


async def test_a_runner_whose_process_stopped_is_restarted_and_verified_online(
    rig: Rig,
) -> None:
    rig.declare(count=(1, 1))
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"]
    app_id = next(iter(rig.dokploy.state.applications))
    async with httpx.AsyncClient(base_url=_dokploy_url(rig)) as client:
        stopped = await client.post(
            "/api/application.stop",
            json={"applicationId": app_id},
            headers={"x-api-key": DOKPLOY_KEY},
        )
    assert stopped.status_code == 200
    assert rig.runners()["setpoint-ci-1"].status == "offline"
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "applied"}
    after = rig.runners()["setpoint-ci-1"]
    assert after.status == "online" and after.id != before.id  # registered afresh
    assert before.id not in rig.github.runners


async def test_scaling_down_with_remove_allowed_deletes_the_runner_application(rig: Rig) -> None:
    rig.declare(count=(1, 2), allow="[create, drain, remove]")
    await rig.reconcile()
    first = rig.runners()["setpoint-ci-1"]
    rig.github.set_runner(first.id, busy=True)
    await rig.reconcile()
    rig.github.set_runner(first.id, busy=False)
    await rig.reconcile()
    rig.clock.advance(IDLE_WINDOW + 1)
    report = await rig.reconcile()
    assert outcomes(report)["runner:ci/2"] == "applied"
    assert set(rig.runners()) == {"setpoint-ci-1"}
    assert set(rig.applications()) == {"setpoint-ci-1"}


async def test_a_removed_pool_is_torn_down_by_an_operator_only(rig: Rig) -> None:
    rig.declare(count=(1, 1))
    await rig.reconcile()
    (rig.folder / "runners.yaml").write_text(HOST_ONLY)
    store_fleet(rig.engine, rig.folder, prune=True)
    scheduled = await rig.reconcile()
    assert outcomes(scheduled) == {"runner:ci/1": "awaiting_operator"}
    assert "setpoint-ci-1" in rig.runners()
    rig.clock.advance(IDLE_WINDOW + 1)
    plan = await compute_plan(rig.runtime)
    assert [a.op for a in plan.actions] == ["remove"]
    first = await apply_plan(rig.runtime, plan.plan_id)
    assert first.status == "waiting"  # online and idle: seen once
    rig.clock.advance(IDLE_WINDOW + 1)
    second = await apply_plan(rig.runtime, (await compute_plan(rig.runtime)).plan_id)
    assert second.ok
    assert rig.runners() == {} and rig.applications() == {}
    assert "runner:ci/1" not in {r.lane for r in (await rig.reconcile()).lanes}


HOST_ONLY = """\
apiVersion: setpoint.dev/v1
kind: Host
metadata: {name: build-1}
spec: {type: dokploy-server, dokployServer: build-1, approved: true}
"""


async def test_without_jit_configs_a_registration_token_is_used_instead(rig: Rig) -> None:
    rig.github.faults.add(
        "error",
        method="POST",
        path="/repos/acme/shop/actions/runners/generate-jitconfig",
        status=404,
    )
    rig.declare(count=(1, 1))
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "applied"}
    runner = rig.runners()["setpoint-ci-1"]
    assert runner.status == "online" and "setpoint-managed" in _labels(rig, "setpoint-ci-1")
    assert set(outcomes(await rig.reconcile()).values()) == {"converged"}  # owned, recorded
    assert rig.github.issued_runner_tokens  # ...and the token is in no record
    assert_no_secrets(every_row(rig.engine), rig.github.issued_runner_tokens)
