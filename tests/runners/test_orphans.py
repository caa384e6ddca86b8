"""Orphans and hygiene: half states are marked in one pass and acted on in a later one, and
only as far as the pool allows."""

from __future__ import annotations

from providers.dokploy.client import DokployClient
from providers.hosts.base import RunnerLaunch
from providers.hosts.dokploy_container import DokployContainerHost
from reconciler.core.planning import compute_plan
from reconciler.secret_values import SecretValue
from tests.runners.conftest import Rig, outcomes


async def _delete_application(rig: Rig, name: str) -> None:
    """Someone deletes the runner's application in Dokploy, behind Setpoint's back."""
    state = rig.dokploy.state
    [app_id] = [k for k, row in state.applications.items() if row["name"] == name]
    del state.applications[app_id]
    state.forget_service(app_id)


async def test_a_registration_without_a_process_is_marked_then_removed_and_replaced(
    rig: Rig,
) -> None:
    rig.declare(count=(2, 2))
    await rig.reconcile()
    # Two creates side by side made one project and one environment for the host.
    assert [p["name"] for p in rig.dokploy.state.projects.values()] == ["setpoint-runners"]
    assert len(rig.dokploy.state.environments) == 2  # `production`, and `build-1`
    before = rig.runners()["setpoint-ci-1"]
    await _delete_application(rig, "setpoint-ci-1")
    rig.github.set_runner(before.id, status="offline")

    marked = await rig.reconcile()
    assert outcomes(marked)["runner:ci/1"] == "applied"  # recorded, nothing else
    assert before.id in rig.github.runners
    quiet = await rig.reconcile()  # within the grace: left alone
    assert before.id in rig.github.runners and outcomes(quiet)["runner:ci/1"] == "converged"

    rig.clock.offset += 120  # past runner_orphan_grace_seconds
    removed = await rig.reconcile()
    assert outcomes(removed)["runner:ci/1"] == "applied"
    assert before.id not in rig.github.runners
    refilled = await rig.reconcile()
    assert outcomes(refilled)["runner:ci/1"] == "applied"
    assert rig.runners()["setpoint-ci-1"].status == "online"


async def test_a_host_listing_no_process_while_setpoint_owns_some_blocks(rig: Rig) -> None:
    rig.declare(count=(1, 1))
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"]
    await _delete_application(rig, "setpoint-ci-1")  # the host now lists nothing at all
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "blocked"}
    plan = await compute_plan(rig.runtime)
    assert [b.type for b in plan.blockers] == ["observation_incomplete"]
    assert "not read as gone" in plan.blockers[0].message
    assert before.id in rig.github.runners


async def test_an_orphan_is_only_marked_when_the_pool_does_not_allow_remove(rig: Rig) -> None:
    rig.declare(count=(2, 2), allow="[create]")
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"]
    await _delete_application(rig, "setpoint-ci-1")
    await rig.reconcile()  # marked
    rig.clock.offset += 120
    report = await rig.reconcile()
    assert outcomes(report)["runner:ci/1"] == "blocked"
    assert before.id in rig.github.runners


async def test_an_owned_runner_offline_past_the_grace_period_is_restarted(rig: Rig) -> None:
    rig.declare(count=(1, 1))
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"]
    rig.github.set_runner(before.id, status="offline")  # the process runs, the runner is stuck
    watched = await rig.reconcile()
    assert outcomes(watched) == {"runner:ci/1": "applied"}
    assert rig.github.runners[before.id].status == "offline"
    rig.clock.offset += 120  # past runner_offline_grace_seconds
    restarted = await rig.reconcile()
    assert outcomes(restarted) == {"runner:ci/1": "applied"}
    assert before.id not in rig.github.runners
    assert rig.runners()["setpoint-ci-1"].status == "online"


async def test_a_process_never_registered_is_marked_then_removed(rig: Rig) -> None:
    client = rig.runtime.provider("dokploy", DokployClient)
    host = DokployContainerHost(client, "build-1", "build-1")
    await host.start(  # a container left by someone, whose registration never happened
        RunnerLaunch(
            name="setpoint-ci-1",
            lane="runner:ci/1",
            pool="ci",
            image="ghcr.io/actions/actions-runner:2.321.0",
            labels=("self-hosted",),
            github_url="https://github.com/acme/shop",
            registration=SecretValue("not-a-jit-config"),
        )
    )
    rig.declare(count=(1, 1))
    marked = await rig.reconcile()
    assert outcomes(marked) == {"runner:ci/1": "applied"}
    assert rig.runners() == {} and "setpoint-ci-1" in rig.applications()
    rig.clock.offset += 120
    removed = await rig.reconcile()
    assert outcomes(removed) == {"runner:ci/1": "applied"}
    assert rig.applications() == {}
    filled = await rig.reconcile()
    assert outcomes(filled) == {"runner:ci/1": "applied"}
    assert rig.runners()["setpoint-ci-1"].status == "online"


async def test_a_pool_on_an_outdated_runner_release_is_reported(rig: Rig) -> None:
    rig.runtime.settings = rig.runtime.settings.model_copy(
        update={"runner_current_release": "2.330.0"}
    )
    rig.declare(count=(1, 1))
    plan = await compute_plan(rig.runtime)
    [note] = [n for n in plan.notes if "older than" in n]
    assert note.startswith("runner:ci/1: RunnerPool ci runs runner 2.321.0")
    assert "update spec.image" in note
