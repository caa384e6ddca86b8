"""The SSH and systemd host adapter against the loopback SSH host (issue 14): the whole
lifecycle of a runner unit, idempotence by name, and what a real host does that is
inconvenient (a stopped unit disappears from systemd's listings; stop kills a job)."""

from __future__ import annotations

import stat
import textwrap
from dataclasses import replace
from pathlib import Path

from providers.hosts.base import HostAdapter, ProcessState, RunnerProcess
from providers.hosts.systemd_emulator import EXAMPLE_TEMPLATE, STATE_ROOT
from providers.hosts.systemd_units import RUNNER_DIR
from reconciler.secret_values import SecretValue
from tests.providers.hosts.conftest import LABELS, SshWorld


def by_name(processes: list[RunnerProcess]) -> dict[str, RunnerProcess]:
    return {p.name: p for p in processes}


async def test_the_adapter_speaks_the_host_protocol(ssh_world: SshWorld) -> None:
    assert isinstance(ssh_world.adapter, HostAdapter)
    assert ssh_world.adapter.host == "build-1"
    assert await ssh_world.adapter.preflight() is None


async def test_start_brings_the_runner_online_with_its_labels(ssh_world: SshWorld) -> None:
    launch = await ssh_world.launch("ci-1")
    assert ssh_world.runner("ci-1") == ("offline", False, ["self-hosted", "Linux", "X64", *LABELS])

    process = await ssh_world.adapter.start(launch)

    assert process.state is ProcessState.running
    assert process.host_ref == "setpoint-runner@ci-1.service"
    assert ssh_world.runner("ci-1") == ("online", False, ["self-hosted", "Linux", "X64", *LABELS])
    listed = by_name(await ssh_world.adapter.list_processes())
    assert listed["ci-1"].state is ProcessState.running
    assert listed["ci-1"].job_running is False


async def test_the_env_file_is_private_and_written_over_sftp(ssh_world: SshWorld) -> None:
    await ssh_world.adapter.start(await ssh_world.launch("ci-1"))

    env_file = ssh_world.host.root / RUNNER_DIR.lstrip("/") / "ci-1.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # Created at 0600 (a partial file, then renamed): never readable by others, even briefly.
    assert ssh_world.host.created_files == [(f"{RUNNER_DIR}/ci-1.env.tmp", 0o600)]
    assert "ACTIONS_RUNNER_INPUT_JITCONFIG=" in env_file.read_text()


async def test_a_job_seen_on_the_host_while_github_still_says_idle(ssh_world: SshWorld) -> None:
    """GitHub's busy flag lags a job's start; the host's process table does not."""
    await ssh_world.adapter.start(await ssh_world.launch("ci-1"))
    ssh_world.host.systemd.start_job("ci-1", github_busy=False)

    assert ssh_world.runner("ci-1") == ("online", False, ["self-hosted", "Linux", "X64", *LABELS])
    listed = by_name(await ssh_world.adapter.list_processes())
    assert listed["ci-1"].job_running is True


async def test_stop_takes_the_runner_offline_and_kills_its_job(ssh_world: SshWorld) -> None:
    await ssh_world.adapter.start(await ssh_world.launch("ci-1"))
    ssh_world.host.systemd.start_job("ci-1")
    assert ssh_world.runner("ci-1") == ("online", True, ["self-hosted", "Linux", "X64", *LABELS])

    await ssh_world.adapter.stop("ci-1")

    status = ssh_world.runner("ci-1")
    assert status is not None and status[:2] == ("offline", False)
    # systemd unloaded the stopped unit; the adapter still knows the runner by its env file.
    assert ssh_world.host.systemd.unit("ci-1") is None
    listed = by_name(await ssh_world.adapter.list_processes())
    assert listed["ci-1"].state is ProcessState.stopped
    assert listed["ci-1"].job_running is False


async def test_remove_leaves_nothing_of_its_own(ssh_world: SshWorld) -> None:
    await ssh_world.adapter.start(await ssh_world.launch("ci-1"))
    state_dir = ssh_world.host.systemd.state_dir("ci-1")
    assert state_dir.is_dir()

    await ssh_world.adapter.remove("ci-1")

    assert await ssh_world.adapter.list_processes() == []
    assert list((ssh_world.host.root / RUNNER_DIR.lstrip("/")).iterdir()) == []
    assert not state_dir.exists() and (ssh_world.host.root / STATE_ROOT.lstrip("/")).is_dir()
    assert ssh_world.host.systemd.loaded == {}
    # The operator's template is not ours to remove.
    assert ssh_world.host.systemd.template_installed()
    status = ssh_world.runner("ci-1")
    assert status is not None and status[0] == "offline"


async def test_start_stop_and_remove_are_idempotent_by_name(ssh_world: SshWorld) -> None:
    launch = await ssh_world.launch("ci-1")
    first = await ssh_world.adapter.start(launch)
    again = await ssh_world.adapter.start(launch)

    assert first.state is again.state is ProcessState.running
    assert len(ssh_world.host.created_files) == 1, "a running runner's env file is left alone"
    assert sum("systemctl start" in c for c in ssh_world.host.commands) == 1

    await ssh_world.adapter.stop("ci-1")
    await ssh_world.adapter.stop("ci-1")
    await ssh_world.adapter.remove("ci-1")
    await ssh_world.adapter.remove("ci-1")
    await ssh_world.adapter.stop("never-was")
    await ssh_world.adapter.remove("never-was")
    assert await ssh_world.adapter.list_processes() == []


async def test_a_runner_github_refuses_fails_its_unit_and_remove_clears_it(
    ssh_world: SshWorld,
) -> None:
    launch = await ssh_world.launch("ci-1")
    [runner] = [r for r in ssh_world.state.runners_in("acme/shop") if r.name == "ci-1"]
    await ssh_world.github.delete_runner(ssh_world.scope, runner.id)

    process = await ssh_world.adapter.start(launch)

    assert process.state is ProcessState.failed
    assert by_name(await ssh_world.adapter.list_processes())["ci-1"].state is ProcessState.failed
    await ssh_world.adapter.remove("ci-1")
    assert await ssh_world.adapter.list_processes() == []


async def test_an_ephemeral_runner_exits_after_its_job(ssh_world: SshWorld) -> None:
    await ssh_world.adapter.start(await ssh_world.launch("ci-1"))
    ssh_world.host.systemd.start_job("ci-1")
    ssh_world.host.systemd.end_job("ci-1")

    assert ssh_world.runner("ci-1") is None, "GitHub forgets an ephemeral runner after its job"
    assert by_name(await ssh_world.adapter.list_processes())["ci-1"].state is ProcessState.stopped


async def test_a_registration_token_registers_the_runner_by_name(ssh_world: SshWorld) -> None:
    token = await ssh_world.github.create_registration_token(ssh_world.scope)
    launch = await ssh_world.launch("unused")
    by_token = replace(
        launch,
        name="ci-tok",
        jit=False,
        registration=SecretValue(token.token.get_secret_value()),
    )
    await ssh_world.adapter.start(by_token)

    assert ssh_world.runner("ci-tok") == ("online", False, ["self-hosted", "Linux", "X64", *LABELS])
    await ssh_world.adapter.stop("ci-tok")
    status = ssh_world.runner("ci-tok")
    assert status is not None and status[0] == "offline"


async def test_a_start_whose_answer_was_lost_is_not_started_twice(ssh_world: SshWorld) -> None:
    """The host started the unit, then the session broke. The retry reads the unit first,
    finds it running and leaves it (and its env file) alone."""
    adapter = ssh_world.adapter_with(command_timeout_seconds=0.5)
    ssh_world.host.lose_reply_to("systemctl start")

    process = await adapter.start(await ssh_world.launch("ci-1"))

    assert process.state is ProcessState.running
    assert sum(c.startswith("systemctl start") for c in ssh_world.host.commands) == 1
    assert len(ssh_world.host.created_files) == 1
    status = ssh_world.runner("ci-1")
    assert status is not None and status[0] == "online"


async def test_remove_disables_a_unit_only_when_someone_enabled_it(ssh_world: SshWorld) -> None:
    await ssh_world.adapter.start(await ssh_world.launch("ci-1"))
    await ssh_world.adapter.start(await ssh_world.launch("ci-2"))
    assert ssh_world.host.execute("systemctl enable setpoint-runner@ci-2.service")[0] == 0

    await ssh_world.adapter.remove("ci-1")
    await ssh_world.adapter.remove("ci-2")

    disables = [c for c in ssh_world.host.commands if c.startswith("systemctl disable")]
    assert disables == ["systemctl disable setpoint-runner@ci-2.service"]
    assert ssh_world.host.systemd.loaded == {}
    assert await ssh_world.adapter.list_processes() == []


def test_the_documented_template_is_the_one_the_loopback_host_installs() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "runners.md").read_text()
    block = doc.split("```ini\n", 1)[1].split("```", 1)[0]
    assert textwrap.dedent(block) == EXAMPLE_TEMPLATE
