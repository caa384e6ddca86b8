"""Fixtures for the host adapters: the Dokploy emulator (Dokploy container host), and a
loopback SSH host with systemd, linked to an in-process GitHub emulator, with the SSH and
systemd adapter pointed at it with host key checking on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import httpx
import pytest

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState, create_app
from providers.github.emulator.runner_link import RunnerLink
from providers.github.models import RunnerScope
from providers.hosts.base import RunnerLaunch
from providers.hosts.ssh_config import SshHostConfig
from providers.hosts.ssh_emulator import LoopbackSshHost
from providers.hosts.ssh_systemd import SshSystemdHost
from reconciler.secret_values import SecretValue
from tests.providers.dokploy.fixtures import dokploy_contract, dokploy_emulator, emulator
from tests.support.timeouts import EMULATOR_TIMEOUT_SECONDS

__all__ = ["dokploy_contract", "dokploy_emulator", "emulator", "ssh_world"]

API_URL = "http://github.test"
TOKEN = "ghp_emulatortoken0123456789"
GITHUB_URL = "https://github.com/acme/shop"
LABELS = ("setpoint-managed", "setpoint-pool:ci", "amd64")


async def no_sleep(_seconds: float) -> None:
    return None


@dataclass
class SshWorld:
    host: LoopbackSshHost
    adapter: SshSystemdHost
    config: SshHostConfig
    github: GitHubClient
    state: EmulatorState
    scope: RunnerScope
    tmp: Path

    def adapter_with(self, **changes: object) -> SshSystemdHost:
        """The same host, reached with other settings."""
        config = self.config.model_copy(update=changes)
        return SshSystemdHost(
            "build-1", address="127.0.0.1", port=self.host.port, config=config, sleep=no_sleep
        )

    async def launch(self, name: str, labels: tuple[str, ...] = LABELS) -> RunnerLaunch:
        """A JIT-configured runner, registered on GitHub (offline until its process runs)."""
        jit = await self.github.generate_jit_config(self.scope, name, 1, list(labels))
        return RunnerLaunch(
            name=name,
            lane="runners/ci",
            pool="ci",
            image="",
            labels=labels,
            github_url=GITHUB_URL,
            registration=SecretValue(jit.encoded_jit_config.get_secret_value()),
        )

    def runner(self, name: str) -> tuple[str, bool, list[str]] | None:
        """(status, busy, label names) of the GitHub runner with this name."""
        for runner in self.state.runners_in("acme/shop"):
            if runner.name == name:
                return runner.status, runner.busy, [label for label, _ in runner.labels]
        return None


def write_key(path: Path, key: asyncssh.SSHKey) -> Path:
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    return path


@pytest.fixture
async def ssh_world(tmp_path: Path) -> AsyncIterator[SshWorld]:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    app = create_app(seed=7)
    state: EmulatorState = app.state.emulator
    state.add_repo("acme", "shop")
    host = LoopbackSshHost(tmp_path / "host", client_keys=[client_key], link=RunnerLink(state))
    async with host:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(host.known_hosts_line())
        config = SshHostConfig(
            key_file=write_key(tmp_path / "id_ed25519", client_key),
            known_hosts_file=known_hosts,
            connect_timeout_seconds=5.0,
            command_timeout_seconds=5.0,
            retry_attempts=2,
        )
        adapter = SshSystemdHost(
            "build-1", address="127.0.0.1", port=host.port, config=config, sleep=no_sleep
        )
        async with GitHubClient(
            API_URL,
            TOKEN,
            transport=httpx.ASGITransport(app=app),
            timeout=EMULATOR_TIMEOUT_SECONDS,
            backoff_seconds=0.001,
            max_backoff_seconds=0.01,
        ) as github:
            yield SshWorld(
                host=host,
                adapter=adapter,
                config=config,
                github=github,
                state=state,
                scope=RunnerScope.for_repo("acme", "shop"),
                tmp=tmp_path,
            )
