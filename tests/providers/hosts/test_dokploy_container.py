"""The Dokploy container host adapter against the Dokploy emulator, its requests held to
Dokploy's OpenAPI contract, and the emulators' runner link."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from providers.dokploy.emulator import Emulator
from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github
from providers.github.emulator.runner_link import RunnerLink
from providers.github.models import RunnerScope
from providers.hosts.base import HostAdapter, ProcessState, RunnerLaunch
from providers.hosts.dokploy_container import DokployContainerHost, runner_env
from tests.providers.dokploy.contract import ContractRecorder
from tests.providers.dokploy.fixtures import make_client


class _Secret:
    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value


def _launch(secret: str, *, jit: bool = True) -> RunnerLaunch:
    return RunnerLaunch(
        name="setpoint-ci-1",
        lane="runner:ci/1",
        pool="ci",
        image="ghcr.io/actions/actions-runner:2.321.0",
        labels=("setpoint-managed", "setpoint-pool:ci", "shop"),
        github_url="https://github.com/acme/shop",
        registration=_Secret(secret),
        jit=jit,
    )


@pytest.fixture
async def host(
    dokploy_emulator: Starlette, dokploy_contract: ContractRecorder
) -> AsyncIterator[DokployContainerHost]:
    emulator: Emulator = dokploy_emulator.state.emulator
    emulator.add_server("build-1")
    async with make_client(dokploy_emulator, dokploy_contract, timeout=2.0) as client:
        yield DokployContainerHost(client, "build-1", "build-1")


async def test_it_speaks_the_host_adapter_protocol(host: DokployContainerHost) -> None:
    assert isinstance(host, HostAdapter)
    assert await host.preflight() is None


async def test_a_server_dokploy_does_not_list_is_refused(host: DokployContainerHost) -> None:
    other = DokployContainerHost(host._client, "build-2", "build-2")
    problem = await other.preflight()
    assert problem is not None and "no server named 'build-2'" in problem
    assert "build-1" in problem


async def test_start_stop_remove_are_idempotent_by_name(
    host: DokployContainerHost, emulator: Emulator
) -> None:
    assert await host.list_processes() == []
    await host.stop("setpoint-ci-1")  # nothing there: success
    await host.remove("setpoint-ci-1")
    started = await host.start(_launch("jit-secret-value-1"))
    again = await host.start(_launch("jit-secret-value-2"))
    assert started.host_ref == again.host_ref  # one application, not two
    emulator.state.advance(1)
    [process] = await host.list_processes()
    assert (process.name, process.state, process.lane) == (
        "setpoint-ci-1",
        ProcessState.running,
        "runner:ci/1",
    )
    row = emulator.state.applications[process.host_ref]
    assert row["serverId"] in emulator.state.servers
    assert row["dockerImage"] == "ghcr.io/actions/actions-runner:2.321.0"
    assert "ACTIONS_RUNNER_INPUT_JITCONFIG=jit-secret-value-2" in row["env"]
    await host.stop("setpoint-ci-1")
    [stopped] = await host.list_processes()
    assert stopped.state is ProcessState.stopped
    await host.remove("setpoint-ci-1")
    assert await host.list_processes() == []


def test_the_secret_travels_in_env_and_nowhere_else() -> None:
    launch = _launch("jit-secret-value")
    assert "jit-secret-value" not in repr(launch)
    env = runner_env(launch)
    assert env.count("jit-secret-value") == 1
    token_env = runner_env(_launch("reg-token", jit=False))
    assert "ACTIONS_RUNNER_INPUT_TOKEN=reg-token" in token_env
    assert "ACTIONS_RUNNER_INPUT_LABELS=setpoint-managed,setpoint-pool:ci,shop" in token_env
    with pytest.raises(ValueError, match="never spans lines"):
        runner_env(_launch("two\nlines"))


async def test_linked_emulators_bring_a_started_runner_online_and_offline(
    host: DokployContainerHost, emulator: Emulator
) -> None:
    github_app = create_github(seed=1)
    state: EmulatorState = github_app.state.emulator
    state.add_repo("acme", "shop")
    emulator.link_runners(RunnerLink(state))
    async with GitHubClient(
        "http://github.test", "ghp_token", transport=httpx.ASGITransport(app=github_app)
    ) as github:
        scope = RunnerScope.parse("acme/shop")
        jit = await github.generate_jit_config(scope, "setpoint-ci-1", 1, ["shop"])
        await host.start(_launch(jit.encoded_jit_config.get_secret_value()))
        assert state.runners[jit.runner.id].status == "offline"  # the deploy has not run
        emulator.state.advance(1)
        assert state.runners[jit.runner.id].status == "online"
        await host.stop("setpoint-ci-1")
        assert state.runners[jit.runner.id].status == "offline"
        await host.remove("setpoint-ci-1")
        assert state.runners[jit.runner.id].status == "offline"  # still registered


async def test_a_token_runner_registers_itself_by_name(
    host: DokployContainerHost, emulator: Emulator
) -> None:
    state = EmulatorState()
    emulator.link_runners(RunnerLink(state))
    token, _ = state.issue_runner_token()
    await host.start(_launch(token, jit=False))
    emulator.state.advance(1)
    [runner] = state.runners_in("acme/shop")
    assert runner.name == "setpoint-ci-1" and runner.status == "online"
    assert ("shop", "custom") in runner.labels
