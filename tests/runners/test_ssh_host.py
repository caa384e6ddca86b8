"""The runner lane lifecycle through the SSH and systemd host adapter (issue 14): create and
see it online, drain a runner whose job only the host can see yet, restart, remove; against
the loopback SSH host linked to the GitHub emulator served on loopback HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncssh
import pytest
from sqlalchemy.engine import Engine

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github
from providers.github.emulator.runner_link import RunnerLink
from providers.github.emulator.state import EmuRunner
from providers.hosts.ssh_config import SshHostConfig
from providers.hosts.ssh_emulator import LoopbackSshHost
from reconciler.cli import wiring
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.demo.loopback import serve
from reconciler.kinds import all_kinds
from reconciler.loop.passes import PassReport
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.settings import Settings
from tests.reconciler.conftest import store_fleet
from tests.runners.conftest import (
    GITHUB_TOKEN,
    IDLE_WINDOW,
    every_row,
    outcomes,
    settled_pass,
)
from tests.support.cli import Invoke
from tests.support.secret_scan import assert_no_secrets

POOL = """\
apiVersion: setpoint.dev/v1
kind: Host
metadata: {{name: build-1}}
spec:
  type: ssh
  ssh: {{address: 127.0.0.1, user: setpoint, port: {port}}}
  approved: true
---
apiVersion: setpoint.dev/v1
kind: RunnerPool
metadata: {{name: ci}}
spec:
  scope: repository
  repository: acme/shop
  host: build-1
  count: {{min: {min}, max: {max}}}
  labels: [self-hosted, linux, shop]
  image: ghcr.io/actions/actions-runner:2.321.0
  ephemeral: false
  allow: {allow}
"""
HOST_ONLY = """\
apiVersion: setpoint.dev/v1
kind: Host
metadata: {{name: build-1}}
spec:
  type: ssh
  ssh: {{address: 127.0.0.1, user: setpoint, port: {port}}}
  approved: true
"""


@dataclass
class SshRig:
    runtime: Runtime
    github: EmulatorState
    host: LoopbackSshHost
    engine: Engine
    folder: Path
    github_url: str
    clock: ShiftedClock

    def declare(
        self, *, count: tuple[int, int] = (1, 1), allow: str = "[create, drain, restart, remove]"
    ) -> None:
        text = POOL.format(port=self.host.port, min=count[0], max=count[1], allow=allow)
        (self.folder / "runners.yaml").write_text(text)
        store_fleet(self.engine, self.folder)

    async def reconcile(self) -> PassReport:
        return await settled_pass(self.runtime)

    def runners(self) -> dict[str, EmuRunner]:
        return {r.name: r for r in self.github.runners_in("acme/shop")}

    def units(self) -> dict[str, str]:
        return {name: u.active_state for name, u in self.host.systemd.loaded.items()}

    def env_files(self) -> list[str]:
        return sorted(p.name for p in self.host.systemd.path("/etc/setpoint/runners").iterdir())


@pytest.fixture
async def ssh_rig(engine: Engine, tmp_path: Path) -> AsyncIterator[SshRig]:
    github_app = create_github(seed=3)
    github: EmulatorState = github_app.state.emulator
    github.add_repo("acme", "shop")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(client_key.export_private_key())
    key_file.chmod(0o600)
    host = LoopbackSshHost(tmp_path / "host", client_keys=[client_key], link=RunnerLink(github))
    clock = ShiftedClock()
    settings = Settings(
        database_url="sqlite://",
        deploy_poll_seconds=0.05,
        # Real seconds, as in the Dokploy rig: a loaded machine still sees the unit's runner
        # come online in time.
        runner_online_timeout_seconds=8.0,
        runner_idle_window_seconds=IDLE_WINDOW,
        runner_busy_retry_seconds=0.05,
        runner_offline_grace_seconds=60,
        runner_orphan_grace_seconds=60,
    )
    async with host:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(host.known_hosts_line())
        ssh = SshHostConfig(
            key_file=key_file,
            known_hosts_file=known_hosts,
            connect_timeout_seconds=5.0,
            command_timeout_seconds=5.0,
        )
        with serve(github_app) as github_url:
            async with GitHubClient(github_url, GITHUB_TOKEN, timeout=5.0) as github_client:
                runtime = Runtime(
                    database=engine,
                    settings=settings,
                    actor="scheduler",
                    kinds=all_kinds,
                    providers={"github": github_client, "ssh": ssh},
                    clock=clock,
                )
                yield SshRig(runtime, github, host, engine, tmp_path, github_url, clock)


async def test_a_lane_is_created_on_the_ssh_host_and_comes_online(ssh_rig: SshRig) -> None:
    ssh_rig.declare(count=(1, 2))
    report = await ssh_rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "applied", "runner:ci/2": "converged"}, [
        r.detail for r in report.lanes
    ]
    runner = ssh_rig.runners()["setpoint-ci-1"]
    assert runner.status == "online"
    labels = {name for name, _ in runner.labels}
    assert {"setpoint-managed", "setpoint-pool:ci", "self-hosted", "linux", "shop"} <= labels
    assert ssh_rig.units() == {"setpoint-ci-1": "active"}
    assert ssh_rig.env_files() == ["setpoint-ci-1.env"]
    again = await ssh_rig.reconcile()
    assert set(outcomes(again).values()) == {"converged"}


async def test_drain_waits_for_a_job_the_host_sees_before_github_does(ssh_rig: SshRig) -> None:
    """GitHub still says idle; the unit runs Runner.Worker: the drain must wait."""
    ssh_rig.declare(count=(1, 2), allow="[create, drain]")
    await ssh_rig.reconcile()
    first = ssh_rig.runners()["setpoint-ci-1"]
    ssh_rig.github.set_runner(first.id, busy=True)
    await ssh_rig.reconcile()  # grows to two
    ssh_rig.github.set_runner(first.id, busy=False)

    plan = await compute_plan(ssh_rig.runtime)
    assert [a.op for a in plan.actions] == ["drain"]
    ssh_rig.host.systemd.start_job("setpoint-ci-2", github_busy=False)
    result = await apply_plan(ssh_rig.runtime, plan.plan_id)
    assert result.status == "waiting"
    assert "setpoint-ci-2" in ssh_rig.runners()
    assert ssh_rig.units()["setpoint-ci-2"] == "active", "never stopped under a running job"

    ssh_rig.host.systemd.end_job("setpoint-ci-2")
    ssh_rig.clock.advance(1)  # past the busy lane's retry time
    assert outcomes(await ssh_rig.reconcile())["runner:ci/2"] == "waiting"  # idle once
    ssh_rig.clock.advance(IDLE_WINDOW + 1)
    drained = await ssh_rig.reconcile()
    assert outcomes(drained)["runner:ci/2"] == "applied"
    assert "setpoint-ci-2" not in ssh_rig.runners()  # deregistered first
    assert "setpoint-ci-2" not in ssh_rig.units()  # then stopped (and unloaded by systemd)
    assert "setpoint-ci-2.env" in ssh_rig.env_files()  # kept: `remove` is not allowed


async def test_a_runner_whose_unit_stopped_is_restarted_and_verified_online(
    ssh_rig: SshRig,
) -> None:
    ssh_rig.declare(count=(1, 1))
    await ssh_rig.reconcile()
    before = ssh_rig.runners()["setpoint-ci-1"]
    status, _, _ = ssh_rig.host.execute("systemctl stop setpoint-runner@setpoint-ci-1.service")
    assert status == 0 and ssh_rig.runners()["setpoint-ci-1"].status == "offline"

    report = await ssh_rig.reconcile()

    assert outcomes(report) == {"runner:ci/1": "applied"}, [r.detail for r in report.lanes]
    after = ssh_rig.runners()["setpoint-ci-1"]
    assert after.status == "online" and after.id != before.id  # registered afresh
    assert ssh_rig.units() == {"setpoint-ci-1": "active"}


async def test_a_removed_pool_leaves_nothing_on_the_ssh_host(ssh_rig: SshRig) -> None:
    ssh_rig.declare(count=(1, 1))
    await ssh_rig.reconcile()
    (ssh_rig.folder / "runners.yaml").write_text(HOST_ONLY.format(port=ssh_rig.host.port))
    store_fleet(ssh_rig.engine, ssh_rig.folder, prune=True)
    ssh_rig.clock.advance(IDLE_WINDOW + 1)
    first = await apply_plan(ssh_rig.runtime, (await compute_plan(ssh_rig.runtime)).plan_id)
    assert first.status == "waiting"  # online and idle: seen once
    ssh_rig.clock.advance(IDLE_WINDOW + 1)
    plan = await compute_plan(ssh_rig.runtime)
    assert [a.op for a in plan.actions] == ["remove"]
    second = await apply_plan(ssh_rig.runtime, plan.plan_id)
    assert second.ok
    assert ssh_rig.runners() == {}
    assert ssh_rig.units() == {} and ssh_rig.env_files() == []
    assert not ssh_rig.host.systemd.state_dir("setpoint-ci-1").exists()


async def test_the_registration_secret_never_crosses_an_ssh_command_line(
    ssh_rig: SshRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ssh_rig.declare(count=(1, 1))
    await ssh_rig.reconcile()
    env_file = ssh_rig.host.systemd.path("/etc/setpoint/runners/setpoint-ci-1.env")
    secret = next(
        line.split("=", 1)[1].strip('"')
        for line in env_file.read_text().splitlines()
        if line.startswith("ACTIONS_RUNNER_INPUT_JITCONFIG=")
    )
    secrets = [secret, *ssh_rig.github.issued_runner_tokens]
    assert any("systemctl start" in c for c in ssh_rig.host.commands)
    assert_no_secrets("\n".join(ssh_rig.host.commands), secrets)
    assert_no_secrets(caplog.text, secrets)
    assert_no_secrets(every_row(ssh_rig.engine), secrets)


async def test_a_runner_that_never_comes_online_is_cleaned_off_the_host(
    ssh_rig: SshRig,
) -> None:
    ssh_rig.host.systemd.link = None  # the unit runs; the runner never reaches GitHub
    ssh_rig.declare(count=(1, 1))
    report = await ssh_rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "apply_failed"}
    [detail] = [r.detail for r in report.lanes if r.lane == "runner:ci/1"]
    assert "not online" in detail and "cleaned up" in detail
    assert ssh_rig.runners() == {}
    assert ssh_rig.units() == {} and ssh_rig.env_files() == []


def test_ssh_hosts_are_wired_in_only_once_a_known_hosts_file_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SETPOINT_SSH_KNOWN_HOSTS_FILE", raising=False)
    assert wiring.ssh_config() is None
    monkeypatch.setenv("SETPOINT_SSH_KNOWN_HOSTS_FILE", str(tmp_path / "known_hosts"))
    config = wiring.ssh_config()
    assert config is not None and config.known_hosts_file == tmp_path / "known_hosts"


PRODUCT = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {name: shop}
spec:
  repository: acme/shop
  dokploy: {project: shop, environment: production}
  runtime: {port: 8080}
  lanes:
    - {name: testing, target: application, image: "ghcr.io/acme/shop:main"}
"""


async def test_a_runners_only_deployment_starts_without_dokploy(
    ssh_rig: SshRig, setpoint: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub and an SSH host are all a fleet of runner pools needs: `setpoint plan` plans
    the pool with no Dokploy configured. Products declared later need Dokploy, and the
    command says so in one line rather than leaving them unreconciled."""
    ssh_rig.declare()
    monkeypatch.delenv("SETPOINT_DOKPLOY_URL", raising=False)
    monkeypatch.delenv("SETPOINT_DOKPLOY_API_KEY", raising=False)
    monkeypatch.setenv("SETPOINT_GITHUB_API_URL", ssh_rig.github_url)
    monkeypatch.setenv("SETPOINT_GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("SETPOINT_SSH_KEY_FILE", str(ssh_rig.folder / "id_ed25519"))
    monkeypatch.setenv("SETPOINT_SSH_KNOWN_HOSTS_FILE", str(ssh_rig.folder / "known_hosts"))

    planned = await anyio.to_thread.run_sync(setpoint, "plan", "--output", "json")
    assert planned.exit_code == 0, planned.output
    actions = json.loads(planned.stdout)["actions"]
    assert [(a["lane"], a["op"]) for a in actions][:1] == [("runner:ci/1", "create")]

    (ssh_rig.folder / "shop.yaml").write_text(PRODUCT)
    store_fleet(ssh_rig.engine, ssh_rig.folder)
    refused = await anyio.to_thread.run_sync(setpoint, "plan")
    assert refused.exit_code == 1
    assert "Product shop needs dokploy, which is not configured" in refused.output
    assert "SETPOINT_DOKPLOY_URL" in refused.output and "Traceback" not in refused.output


def test_with_no_provider_configured_a_command_says_what_to_set(
    setpoint: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("SETPOINT_DOKPLOY_URL", "SETPOINT_DOKPLOY_API_KEY", "SETPOINT_GITHUB_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    result = setpoint("plan")
    assert result.exit_code == 1
    assert "Dokploy is not configured: set SETPOINT_DOKPLOY_URL" in result.output
    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", "http://127.0.0.1:9")  # half configured
    assert "Dokploy is not configured" in setpoint("plan").output
