"""The emulator over real loopback HTTP, as `setpoint demo` and e2e tests use it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from providers.dokploy.client import DokployClient
from providers.dokploy.deploy import deploy_and_wait
from providers.dokploy.emulator import create_app
from providers.dokploy.ensure import ensure_application
from providers.dokploy.errors import DokployUnauthorized
from reconciler.demo.loopback import free_port, serve, serve_command

pytestmark = pytest.mark.e2e
KEY = "loopback-key"


@pytest.fixture
def served_url() -> Iterator[str]:
    with serve(create_app(api_key=KEY, seed=1, build_seconds=0.05)) as url:
        yield url


async def test_full_flow_and_http_fault_control_over_loopback(served_url: str) -> None:
    async with DokployClient(
        served_url, KEY, timeout=0.3, backoff_base=0.001, backoff_max=0.01
    ) as client:
        await client.preflight()
        env_id = (await client.project_create("shop")).environment.environment_id
        async with httpx.AsyncClient(base_url=served_url, headers={"x-api-key": KEY}) as control:
            answer = await control.post(
                "/__emulator/faults",
                json={"action": "timeout", "procedure": "application.create", "seconds": 1},
            )
            assert answer.status_code == 200
            app, created = await ensure_application(client, env_id, "web")
            assert created
            state = (await control.get("/__emulator/state")).json()
            assert state["applications"] == ["web"]  # the lost-answer create was not repeated
        await client.application_save_docker_provider(app.application_id, "nginx:1")
        await client.application_save_environment(app.application_id, "A=1\n")
        result = await deploy_and_wait(
            client, application_id=app.application_id, timeout=5, poll_interval=0.02
        )
        assert result.status == "done"


@pytest.fixture
def cli_url() -> Iterator[str]:
    """`setpoint emulator dokploy` in a child process, as an operator would start it."""
    port = free_port()
    args = ("emulator", "dokploy", "--port", str(port), "--api-key", KEY, "--seed", "3")
    with serve_command(args, ready_path="/api/user.get", port=port) as url:
        yield url


async def test_cli_command_serves_the_emulator_on_loopback(cli_url: str) -> None:
    async with DokployClient(cli_url, KEY, timeout=2) as client:
        await client.preflight()
        assert await client.project_all() == []
    async with DokployClient(cli_url, "wrong", timeout=2) as client:
        with pytest.raises(DokployUnauthorized):
            await client.project_all()
