"""Each injected fault, as the client and the deploy tracker experience it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.applications import Starlette

from providers.dokploy.client import DokployClient
from providers.dokploy.deploy import deploy_and_wait, poll_delays
from providers.dokploy.emulator import Emulator
from providers.dokploy.ensure import (
    AmbiguousName,
    ensure_application,
    ensure_compose,
    ensure_environment,
    ensure_project,
)
from providers.dokploy.errors import (
    DeployQueued,
    DeployTimeout,
    DokployTimeout,
    DokployTransientError,
)
from tests.providers.dokploy.contract import ContractRecorder, RecordingTransport
from tests.providers.dokploy.fixtures import make_client

FAST_TIMEOUT = 0.1  # client timeout for tests that make the emulator hang


async def _app_with_image(client: DokployClient, name: str = "web") -> tuple[str, str]:
    env_id = (await client.project_create("shop")).environment.environment_id
    app = await client.application_create(name, env_id)
    await client.application_save_docker_provider(app.application_id, "nginx:1")
    return env_id, app.application_id


@pytest.fixture
async def fast_client(dokploy_emulator: Starlette, dokploy_contract: ContractRecorder) -> Any:
    async with make_client(dokploy_emulator, dokploy_contract, timeout=FAST_TIMEOUT) as client:
        yield client


async def test_timeout_mid_create_then_retry_does_not_duplicate(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await fast_client.project_create("shop")).environment.environment_id
    # The create happens, then the answer is lost: the classic duplicate trap.
    emulator.faults.timeout("application.create", seconds=5, when="after", count=1)
    app, created = await ensure_application(fast_client, env_id, "web", app_name="web")
    assert created is True
    assert [a["name"] for a in emulator.state.applications.values()] == ["web"]
    again, created_again = await ensure_application(fast_client, env_id, "web")
    assert (again.application_id, created_again) == (app.application_id, False)
    assert len(emulator.state.applications) == 1


async def test_plain_create_that_times_out_is_not_retried(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await fast_client.project_create("shop")).environment.environment_id
    emulator.faults.timeout("application.create", seconds=5, when="after", count=1)
    with pytest.raises(DokployTimeout):
        await fast_client.application_create("web", env_id)
    assert len(emulator.state.applications) == 1  # created once; never sent twice


async def test_timeout_before_processing_creates_nothing_and_ensure_recovers(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await fast_client.project_create("shop")).environment.environment_id
    emulator.faults.timeout("compose.create", seconds=5, when="before", count=1)
    comp, created = await ensure_compose(fast_client, env_id, "db", compose_file="services: {}")
    assert created and [c["name"] for c in emulator.state.composes.values()] == ["db"]
    assert comp.compose_id in emulator.state.composes


async def test_ensure_project_and_environment_after_lost_answers(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    emulator.faults.timeout("project.create", seconds=5, when="after", count=1)
    project, created = await ensure_project(fast_client, "shop")
    assert created and len(emulator.state.projects) == 1
    assert [e.name for e in project.environments] == ["production"]
    emulator.faults.timeout("environment.create", seconds=5, when="after", count=1)
    env, created = await ensure_environment(fast_client, project.project_id, "staging")
    assert created and env.name == "staging"
    assert sorted(e["name"] for e in emulator.state.environments.values()) == [
        "production",
        "staging",
    ]


async def test_ensure_refuses_to_guess_between_same_named_services(
    dokploy_client: DokployClient,
) -> None:
    env_id = (await dokploy_client.project_create("shop")).environment.environment_id
    await dokploy_client.application_create("web", env_id)
    await dokploy_client.application_create("web", env_id)  # Dokploy allows this
    with pytest.raises(AmbiguousName):
        await ensure_application(dokploy_client, env_id, "web")


async def test_read_timeouts_are_retried(fast_client: DokployClient, emulator: Emulator) -> None:
    await fast_client.project_create("shop")
    emulator.faults.timeout("project.all", seconds=5, count=1)
    assert [p.name for p in await fast_client.project_all()] == ["shop"]


async def test_latency_below_timeout_is_tolerated_above_it_times_out(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    emulator.faults.latency(0.02)
    assert await fast_client.server_all() == []
    emulator.faults.latency(5.0, procedure="project.create")
    with pytest.raises(DokployTimeout):
        await fast_client.project_create("slow")


async def test_error_rate_is_seeded_and_reads_ride_it_out(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    emulator.faults.error_rate("server.all", 0.3, status=503)
    transport = dokploy_client._http._transport
    assert isinstance(transport, RecordingTransport)
    for _ in range(10):
        assert await dokploy_client.server_all() == []
    assert len(transport.seen) > 10  # some calls failed and were retried
    emulator.faults.error_rate("server.all", 1.0, status=503)
    with pytest.raises(DokployTransientError):
        await dokploy_client.server_all()


async def test_empty_list_fault_hides_existing_projects(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    # The client cannot tell; the reconciler's ownership registry must (invariant 3).
    await dokploy_client.project_create("shop")
    emulator.faults.empty_list("project.all")
    assert await dokploy_client.project_all() == []
    emulator.faults.empty_list("project.all", on=False)
    assert len(await dokploy_client.project_all()) == 1


async def test_deploy_and_wait_returns_the_new_finished_deployment(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    _, app_id = await _app_with_image(dokploy_client)
    first = await deploy_and_wait(
        dokploy_client, application_id=app_id, timeout=5, poll_interval=0.01
    )
    second = await deploy_and_wait(
        dokploy_client, application_id=app_id, timeout=5, poll_interval=0.01, title="release 2"
    )
    assert (first.status, second.status) == ("done", "done")
    assert second.deployment_id != first.deployment_id and second.title == "release 2"
    assert (await dokploy_client.application_one(app_id)).application_status == "done"


async def test_deploy_and_wait_reports_a_failed_build(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    _, app_id = await _app_with_image(dokploy_client)
    emulator.faults.fail_next_deploy(app_id)
    result = await deploy_and_wait(
        dokploy_client, application_id=app_id, timeout=5, poll_interval=0.01
    )
    # As on a real Dokploy v0.30.2 server, a failed deployment carries no errorMessage.
    assert result.status == "error" and result.error_message is None


async def test_deploy_of_an_app_without_image_fails_like_dokploy(
    dokploy_client: DokployClient,
) -> None:
    env_id = (await dokploy_client.project_create("shop")).environment.environment_id
    app = await dokploy_client.application_create("bare", env_id)
    result = await deploy_and_wait(
        dokploy_client, application_id=app.application_id, timeout=5, poll_interval=0.01
    )
    assert result.status == "error"


async def test_stuck_deployment_ends_in_deploy_timeout(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    _, app_id = await _app_with_image(dokploy_client)
    emulator.faults.stuck_deployment(app_id)
    with pytest.raises(DeployTimeout, match="still 'running'"):
        await deploy_and_wait(
            dokploy_client, application_id=app_id, timeout=0.3, poll_interval=0.02
        )


async def test_deploy_answer_lost_is_still_tracked_not_redeployed(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    _, app_id = await _app_with_image(fast_client)
    emulator.faults.timeout("application.deploy", seconds=5, when="after", count=1)
    result = await deploy_and_wait(
        fast_client, application_id=app_id, timeout=5, poll_interval=0.01
    )
    assert result.status == "done"
    assert len(emulator.state.deployments(app_id)) == 1


async def test_deploy_that_never_starts_is_reported_queued_not_timed_out(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    _, app_id = await _app_with_image(fast_client)
    emulator.faults.timeout("application.deploy", seconds=5, when="before", count=1)
    with pytest.raises(DeployQueued, match="still queued"):
        await deploy_and_wait(fast_client, application_id=app_id, timeout=0.3, poll_interval=0.02)


async def test_compose_deploy_applies_env_and_domains(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await dokploy_client.project_create("shop")).environment.environment_id
    comp = await dokploy_client.compose_create("db", env_id, compose_file="services: {}")
    await dokploy_client.compose_save_environment(comp.compose_id, "A=1")
    await dokploy_client.domain_create(
        "db.example.test", compose_id=comp.compose_id, service_name="web"
    )
    assert comp.compose_id not in emulator.state.live
    result = await deploy_and_wait(
        dokploy_client, compose_id=comp.compose_id, timeout=5, poll_interval=0.01
    )
    assert result.status == "done"
    live = emulator.state.live[comp.compose_id]
    assert (live.env, [r["host"] for r in live.routes]) == ("A=1", ["db.example.test"])


def _polls(client: DokployClient) -> list[str]:
    """The deployment-list reads and deploys the client sent, in order."""
    transport = client._http._transport
    assert isinstance(transport, RecordingTransport)
    wanted = {"deployment.all", "deployment.allByCompose", "application.deploy", "compose.deploy"}
    return [procedure for _, procedure in transport.seen if procedure in wanted]


def test_polls_start_fast_and_back_off_to_the_poll_interval() -> None:
    delays = poll_delays(0.05, 2.0)
    assert [round(next(delays), 6) for _ in range(5)] == [0.05, 0.2, 0.8, 2.0, 2.0]
    assert next(poll_delays(0.05, 0.01)) == 0.01  # a poll interval below the first wait wins


async def test_a_quick_build_is_seen_after_a_few_quick_polls(
    dokploy_client: DokployClient,
) -> None:
    _, app_id = await _app_with_image(dokploy_client)  # builds take BUILD_SECONDS (0.05 s)
    # A long poll interval is only the cap: polling at it would wait 30 s for a 0.05 s build.
    with anyio.fail_after(10):
        result = await deploy_and_wait(
            dokploy_client, application_id=app_id, timeout=60, poll_interval=30
        )
    assert result.status == "done"
    calls = _polls(dokploy_client)
    assert calls[:2] == ["deployment.all", "application.deploy"]
    assert 1 <= len(calls[2:]) <= 4


async def test_a_long_poll_interval_does_not_stretch_the_deploy_timeout(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    _, app_id = await _app_with_image(dokploy_client)
    emulator.faults.stuck_deployment(app_id)
    with anyio.fail_after(10), pytest.raises(DeployTimeout, match="still 'running'"):
        await deploy_and_wait(dokploy_client, application_id=app_id, timeout=0.3, poll_interval=30)
    # Waits of 0.05, 0.2 and 0.05 (cut to the deadline): three polls, the last at it.
    assert len(_polls(dokploy_client)) <= 2 + 4


async def test_a_never_deployed_service_is_not_listed_first_and_only_its_title_counts(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    _, app_id = await _app_with_image(fast_client)
    await fast_client.application_deploy(app_id, title="somebody else")
    emulator.state.advance(1.0)  # theirs is done before ours is queued
    ours = await deploy_and_wait(
        fast_client,
        application_id=app_id,
        timeout=5,
        poll_interval=0.01,
        title="setpoint lane a1",
        never_deployed=True,
    )
    assert (ours.title, ours.status) == ("setpoint lane a1", "done")
    assert _polls(fast_client)[:2] == ["application.deploy", "application.deploy"]  # no read
    # Ours is lost before Dokploy queues it: their finished deployment is not taken for ours.
    emulator.faults.timeout("application.deploy", seconds=5, when="before", count=1)
    with pytest.raises(DeployQueued, match="still queued"):
        await deploy_and_wait(
            fast_client,
            application_id=app_id,
            timeout=0.3,
            poll_interval=0.02,
            title="setpoint lane a2",
            never_deployed=True,
        )
    with pytest.raises(ValueError, match="title"):
        await deploy_and_wait(fast_client, application_id=app_id, timeout=1, never_deployed=True)
