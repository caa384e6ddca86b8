"""What the SSH and systemd adapter refuses and keeps to itself (issue 14; Invariants 7, 8):
the registration secret travels only inside the 0600 env file; host keys are checked;
every connect and command has a deadline, and a failure is one line."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from providers.hosts.ssh_config import SshHostConfig
from providers.hosts.ssh_emulator import LoopbackSshHost
from providers.hosts.ssh_session import (
    SshCommandFailed,
    SshFileError,
    SshHostError,
    SshRefused,
    SshTimedOut,
    SshUnreachable,
    connect_options,
)
from providers.hosts.ssh_systemd import SshSystemdHost
from providers.hosts.systemd_units import InvalidRunnerName
from tests.providers.hosts.conftest import SshWorld, no_sleep
from tests.support.secret_scan import assert_no_secrets


def one_line(text: str) -> bool:
    return bool(text) and "\n" not in text


async def test_the_secret_is_on_no_command_line_in_no_log_and_no_error(
    ssh_world: SshWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    launch = await ssh_world.launch("ci-1")
    secret = launch.registration.reveal()

    await ssh_world.adapter.start(launch)
    await ssh_world.adapter.list_processes()
    await ssh_world.adapter.stop("ci-1")
    ssh_world.host.systemd.path("/etc/systemd/system/setpoint-runner@.service").unlink()
    with pytest.raises(SshCommandFailed) as failed:
        await ssh_world.adapter.start(launch)
    await ssh_world.adapter.remove("ci-1")

    assert any("systemctl start setpoint-runner@ci-1.service" in c for c in ssh_world.host.commands)
    error_text = "".join(traceback.format_exception(failed.value))
    for text in ("\n".join(ssh_world.host.commands), caplog.text, error_text):
        assert_no_secrets(text, [secret])
    assert_no_secrets(repr(launch) + repr(ssh_world.adapter), [secret])
    assert one_line(str(failed.value)) and "exited 5" in str(failed.value)


async def test_preflight_says_in_one_line_that_the_template_is_missing(
    ssh_world: SshWorld,
) -> None:
    ssh_world.host.systemd.path("/etc/systemd/system/setpoint-runner@.service").unlink()
    problem = await ssh_world.adapter.preflight()
    assert problem is not None and one_line(problem)
    assert "setpoint-runner@.service is not installed" in problem


async def test_preflight_names_what_the_template_lacks(ssh_world: SshWorld) -> None:
    ssh_world.host.systemd.install_template("[Service]\nExecStart=/opt/actions-runner/run.sh\n")
    problem = await ssh_world.adapter.preflight()
    assert problem is not None and one_line(problem)
    assert "env file" in problem and "work directory" in problem


async def test_a_changed_host_key_is_refused_before_any_command(ssh_world: SshWorld) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    (ssh_world.tmp / "known_hosts").write_text(f"[127.0.0.1]:{ssh_world.host.port} {other}")

    problem = await ssh_world.adapter.preflight()
    with pytest.raises(SshRefused) as refused:
        await ssh_world.adapter.start(await ssh_world.launch("ci-1"))

    assert problem is not None and one_line(problem) and "host key not accepted" in problem
    assert one_line(str(refused.value))
    assert ssh_world.host.commands == [] and ssh_world.host.created_files == []


async def test_a_host_missing_from_known_hosts_is_refused(ssh_world: SshWorld) -> None:
    (ssh_world.tmp / "known_hosts").write_text("")
    problem = await ssh_world.adapter.preflight()
    assert problem is not None and "host key not accepted" in problem
    missing = ssh_world.adapter_with(known_hosts_file=ssh_world.tmp / "nowhere")
    problem = await missing.preflight()
    assert problem is not None and "does not exist" in problem
    unset = ssh_world.adapter_with(known_hosts_file=None)
    problem = await unset.preflight()
    assert problem is not None and "SETPOINT_SSH_KNOWN_HOSTS_FILE is not set" in problem
    assert ssh_world.host.commands == []


async def test_a_key_the_host_does_not_know_is_refused(ssh_world: SshWorld) -> None:
    stranger = ssh_world.tmp / "stranger"
    stranger.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    stranger.chmod(0o600)
    problem = await ssh_world.adapter_with(key_file=stranger).preflight()
    assert problem is not None and one_line(problem) and "login refused" in problem


async def test_a_name_that_is_not_a_unit_instance_is_refused_before_connecting(
    ssh_world: SshWorld,
) -> None:
    launch = await ssh_world.launch("ci-1")
    for name in ("../etc/passwd", "a b", "x;reboot", "", "-rf"):
        with pytest.raises(InvalidRunnerName):
            await ssh_world.adapter.start(replace(launch, name=name))
        with pytest.raises(InvalidRunnerName):
            await ssh_world.adapter.remove(name)
    assert ssh_world.host.commands == []


# -- deadlines ------------------------------------------------------------------------


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP server that accepts and never says a word: no SSH banner, ever."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_host_that_never_answers_fails_in_one_line_within_the_timeout(
    ssh_world: SshWorld, silent_port: int
) -> None:
    config = ssh_world.config.model_copy(update={"connect_timeout_seconds": 0.5})
    adapter = SshSystemdHost(
        "build-1", address="127.0.0.1", port=silent_port, config=config, sleep=no_sleep
    )
    started = time.monotonic()
    with pytest.raises(SshUnreachable) as unreachable:
        await adapter.list_processes()
    elapsed = time.monotonic() - started

    # Two attempts (nothing ran, so the connect is retried), each bounded by the timeout.
    assert elapsed < 2 * (0.5 + 0.5) + 0.5
    assert one_line(str(unreachable.value)) and "no SSH login within 0.5s" in str(unreachable.value)
    problem = await adapter.preflight()
    assert problem is not None and one_line(problem)


async def test_a_command_that_never_returns_times_out_in_one_line(ssh_world: SshWorld) -> None:
    adapter = ssh_world.adapter_with(command_timeout_seconds=0.5, retry_attempts=1)
    ssh_world.host.stall_commands = True
    started = time.monotonic()
    with pytest.raises(SshTimedOut) as timed_out:
        await adapter.stop("ci-1")
    assert time.monotonic() - started < 0.5 + 1.5
    assert one_line(str(timed_out.value)) and "no answer within 0.5s" in str(timed_out.value)


async def test_an_idempotent_step_that_timed_out_is_repeated(ssh_world: SshWorld) -> None:
    """stop may have run when its session broke; stopping again is harmless, so it is."""
    adapter = ssh_world.adapter_with(command_timeout_seconds=0.3, retry_attempts=2)
    ssh_world.host.stall_commands = True
    with pytest.raises(SshTimedOut):
        await adapter.stop("ci-1")
    assert ssh_world.host.commands == ["systemctl stop setpoint-runner@ci-1.service"] * 2


async def test_a_refused_connection_is_retried_then_reported(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    config = SshHostConfig(known_hosts_file=known, connect_timeout_seconds=1, retry_attempts=3)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    # Port 1 on loopback: nothing listens, so the kernel refuses at once.
    adapter = SshSystemdHost("build-1", address="127.0.0.1", port=1, config=config, sleep=sleep)
    with pytest.raises(SshUnreachable) as unreachable:
        await adapter.list_processes()
    assert len(slept) == 2 and one_line(str(unreachable.value))
    assert isinstance(unreachable.value, SshHostError)


async def test_errors_and_the_adapter_never_show_the_key_file_contents(
    ssh_world: SshWorld,
) -> None:
    key_text = (ssh_world.tmp / "id_ed25519").read_text()
    body = "".join(line for line in key_text.splitlines()[1:-1])
    assert body not in repr(ssh_world.adapter)
    assert body not in repr(ssh_world.config)


async def test_the_loopback_host_behaves_like_a_shell(ssh_world: SshWorld) -> None:
    host: LoopbackSshHost = ssh_world.host
    assert host.execute("rm -rf /")[0] == 127
    assert host.execute("systemctl stop x.service; rm -rf /")[0] == 2
    assert host.execute("ps aux")[0] == 1
    assert host.execute("systemctl reset-failed setpoint-runner@gone.service")[0] == 1
    assert host.execute("systemctl start other@x.service")[0] == 5
    assert host.execute("systemctl frobnicate")[0] == 1


async def test_the_login_user_may_write_only_in_the_runner_directory(ssh_world: SshWorld) -> None:
    async with (
        asyncssh.connect(
            "127.0.0.1",
            ssh_world.host.port,
            username="setpoint",
            options=connect_options(ssh_world.config, ssh_world.tmp / "known_hosts"),
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            async with sftp.open("/etc/systemd/system/evil.service", "w") as handle:
                await handle.write("[Service]\n")
        async with sftp.open("/etc/setpoint/runners/x.env", "w") as handle:
            await handle.write("A=1\n")
    assert not ssh_world.host.systemd.path("/etc/systemd/system/evil.service").exists()


async def test_a_missing_runner_directory_fails_the_listing_closed(ssh_world: SshWorld) -> None:
    """Never "no runners" when the adapter cannot see where its runners are (Invariant 3)."""
    ssh_world.host.systemd.path("/etc/setpoint/runners").rmdir()
    with pytest.raises(SshFileError) as missing:
        await ssh_world.adapter.list_processes()
    assert one_line(str(missing.value)) and "/etc/setpoint/runners is missing" in str(missing.value)
    problem = await ssh_world.adapter.preflight()
    assert problem is not None and "/etc/setpoint/runners does not exist" in problem


async def test_preflight_says_when_ps_cannot_show_units(
    ssh_world: SshWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_unit_column(args: list[str]) -> tuple[int, str, str]:
        return 1, "", 'error: unknown user-defined format specifier "unit"\n'

    monkeypatch.setattr(ssh_world.host.systemd, "ps", no_unit_column)
    problem = await ssh_world.adapter.preflight()
    assert problem is not None and one_line(problem) and "ps -o unit" in problem
