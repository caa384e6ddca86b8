"""Dokploy v0.30 builds one deployment at a time per server, and a deployment row appears
only when its build starts (tests/contracts/dokploy-real-v0.30.2/README.md). The emulator
queues builds the same way, and a deploy's wait counts its timeout from the build's start:
a deploy waiting its turn is queued, not timed out (issue 22, "Queued builds")."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import datetime

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from providers.dokploy.client import DokployClient
from providers.dokploy.deploy import deploy_and_wait
from providers.dokploy.emulator import Emulator, create_app
from providers.dokploy.models import Deployment
from tests.providers.dokploy.contract import ContractRecorder, RecordingTransport
from tests.providers.dokploy.fixtures import API_KEY, BASE_URL, make_client

LANES = 8
BUILD = 0.1
# Met by every build when counted from its start; the 8th build starts 0.7 s after the
# deploys were asked for, so a wait counted from the deploy call times out from the 6th on.
TIMEOUT = 0.5


async def _apps(client: DokployClient, count: int) -> list[str]:
    env_id = (await client.project_create("queue")).environment.environment_id
    ids = []
    for n in range(count):
        app = await client.application_create(f"web{n}", env_id)
        await client.application_save_docker_provider(app.application_id, docker_image="nginx:1")
        ids.append(app.application_id)
    return ids


def _emulator(app: Starlette) -> Emulator:
    emulator: Emulator = app.state.emulator
    return emulator


@pytest.fixture
async def queued(
    dokploy_contract: ContractRecorder,
) -> AsyncIterator[tuple[Starlette, DokployClient]]:
    app = create_app(api_key=API_KEY, seed=3, build_seconds=BUILD)
    async with make_client(app, dokploy_contract) as client:
        yield app, client


async def test_the_emulator_builds_one_deployment_at_a_time_and_shows_it_when_it_starts(
    dokploy_contract: ContractRecorder,
) -> None:
    app = create_app(api_key=API_KEY, seed=3, build_seconds=60.0)
    emulator = _emulator(app)
    async with make_client(app, dokploy_contract) as client:
        first, second, third = await _apps(client, 3)
        for service in (first, second, third):
            await client.application_deploy(service)
        # Only the first build runs; the others are queued and have no row yet.
        assert [d.status for d in await client.deployment_all(first)] == ["running"]
        assert await client.deployment_all(second) == []
        assert await client.deployment_all(third) == []
        emulator.state.advance(60.0)
        assert [d.status for d in await client.deployment_all(first)] == ["done"]
        assert [d.status for d in await client.deployment_all(second)] == ["running"]
        assert await client.deployment_all(third) == []
        emulator.state.advance(120.0)
        assert [d.status for d in await client.deployment_all(third)] == ["done"]


async def test_parallel_builds_remain_an_option(dokploy_contract: ContractRecorder) -> None:
    app = create_app(api_key=API_KEY, seed=3, build_seconds=60.0, parallel_builds=True)
    async with make_client(app, dokploy_contract) as client:
        services = await _apps(client, 3)
        for service in services:
            await client.application_deploy(service)
        for service in services:
            assert [d.status for d in await client.deployment_all(service)] == ["running"]


async def test_a_remote_server_has_its_own_build_queue(dokploy_contract: ContractRecorder) -> None:
    app = create_app(api_key=API_KEY, seed=3, build_seconds=60.0)
    server = _emulator(app).add_server("builder")
    async with make_client(app, dokploy_contract) as client:
        env_id = (await client.project_create("two")).environment.environment_id
        here = await client.application_create("here", env_id)
        there = await client.application_create("there", env_id, server_id=server["serverId"])
        for service in (here, there):
            await client.application_save_docker_provider(
                service.application_id, docker_image="nginx:1"
            )
            await client.application_deploy(service.application_id)
        for service in (here, there):
            statuses = [d.status for d in await client.deployment_all(service.application_id)]
            assert statuses == ["running"]


def _spans(deployments: list[Deployment]) -> list[tuple[datetime, datetime]]:
    return sorted(
        (datetime.fromisoformat(str(d.started_at)), datetime.fromisoformat(str(d.finished_at)))
        for d in deployments
    )


async def test_eight_deploys_at_once_all_meet_a_timeout_counted_from_their_build_start(
    queued: tuple[Starlette, DokployClient],
) -> None:
    _, client = queued
    services = await _apps(client, LANES)
    results: dict[str, Deployment] = {}

    async def deploy(service: str) -> None:
        results[service] = await deploy_and_wait(
            client,
            application_id=service,
            timeout=TIMEOUT,
            queue_timeout=30.0,
            poll_interval=0.02,
            title=f"setpoint {service}",
        )

    async with anyio.create_task_group() as group:
        for service in services:
            group.start_soon(deploy, service)
    assert sorted(d.status for d in results.values()) == ["done"] * LANES
    spans = _spans(list(results.values()))
    # The server built them one after another: no two builds overlapped.
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


async def test_a_429_while_waiting_does_not_use_up_the_deploy_timeout(
    dokploy_contract: ContractRecorder,
) -> None:
    app = create_app(api_key=API_KEY, seed=3, build_seconds=0.3)
    emulator = _emulator(app)
    transport = RecordingTransport(httpx.ASGITransport(app=app), dokploy_contract)
    async with DokployClient(
        BASE_URL, API_KEY, timeout=1.0, transport=transport, retry_after_cap=5.0
    ) as client:
        (service,) = await _apps(client, 1)
        found: list[Deployment] = []

        async def deploy() -> None:
            found.append(
                await deploy_and_wait(
                    client, application_id=service, timeout=0.6, poll_interval=0.05
                )
            )

        async with anyio.create_task_group() as group:
            group.start_soon(deploy)
            while not emulator.state.deployments(service):  # noqa: ASYNC110 -- a poll of state
                await anyio.sleep(0.01)
            # The build runs; the next poll is refused with a Retry-After longer than the
            # whole deploy timeout.
            emulator.faults.rate_limit(count=1, retry_after=1.0)
        assert [d.status for d in found] == ["done"]
        assert client.rate_limited_seconds >= 1.0
