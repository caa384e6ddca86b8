"""One SSH connection to a runner host, under deadlines, with typed one-line failures.

    SshHostError                      every failure of an SSH host; one line, no secret
    ├── SshRefused                    host key not accepted, login refused: never retried
    ├── SshCommandFailed              a command exited non-zero (its status, stderr's first line)
    ├── SshFileError                  an SFTP step failed (the path and the server's reason)
    ├── SshUnreachable (transient)    no session was made: nothing ran, safe to try again
    └── SshConnectionLost (transient) the session broke or a step took too long; the step
        └── SshTimedOut               may have run on the host, so only an idempotent
                                      operation is repeated (providers/http_core.py's rule)

Host keys are always checked against the configured known_hosts file: asyncssh skips the
check only when told `known_hosts=None`, which this module never passes.

Commands are argument lists, quoted here with `shlex.quote`; nothing a caller passes is
parsed by the remote shell as syntax. No command may carry a secret: process listings and
shell histories are readable by others, so secrets travel as file contents over SFTP.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
import asyncssh

from providers.hosts.ssh_config import SshHostConfig
from providers.http_core import TransientFailure

log = logging.getLogger(__name__)

T = TypeVar("T")
_FIRST_LINE_MAX = 200


class SshHostError(Exception):
    """A failure of an SSH host, as one line that names the host and the step."""


class SshRefused(SshHostError):
    """The host or its login refused us; trying again changes nothing."""


class SshCommandFailed(SshHostError):
    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class SshFileError(SshHostError):
    pass


class SshUnreachable(SshHostError, TransientFailure):
    """No session: the connection was refused, dropped or timed out before login."""

    request_sent = False


class SshConnectionLost(SshHostError, TransientFailure):
    """The session broke during a step, which may have run on the host."""


class SshTimedOut(SshConnectionLost):
    pass


@dataclass(frozen=True)
class SshTarget:
    """Where a host is; `host` is the `Host` object's name, for messages."""

    host: str
    address: str
    user: str
    port: int = 22

    def __str__(self) -> str:
        return f"host {self.host} ({self.user}@{self.address}:{self.port})"


@dataclass(frozen=True)
class Completed:
    exit_status: int
    stdout: str
    stderr: str


def first_line(text: str) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line[:_FIRST_LINE_MAX]


class SshSession:
    """Commands and file steps on one open connection, each under the command timeout."""

    def __init__(
        self, conn: asyncssh.SSHClientConnection, target: SshTarget, config: SshHostConfig
    ) -> None:
        self._conn = conn
        self._target = target
        self._timeout = config.command_timeout_seconds
        self._sftp: asyncssh.SFTPClient | None = None

    async def run(self, *argv: str, ok: tuple[int, ...] = (0,)) -> Completed:
        """Run one command; an exit status outside `ok` raises `SshCommandFailed`."""
        command = shlex.join(argv)
        log.debug("%s: %s", self._target, command)
        result = await self._step(command, self._run_once(command))
        if result.exit_status not in ok:
            reason = first_line(result.stderr) or first_line(result.stdout) or "no output"
            raise SshCommandFailed(
                f"{self._target}: `{command}` exited {result.exit_status}: {reason}",
                result.exit_status,
            )
        return result

    async def _run_once(self, command: str) -> Completed:
        done = await self._conn.run(command, check=False)
        status = done.exit_status if done.exit_status is not None else -1
        return Completed(status, _text(done.stdout), _text(done.stderr))

    async def write_private_file(self, path: str, text: str, mode: int) -> None:
        """Replace `path` with `text`, readable by the owner only, in one rename: a reader
        (systemd starting the unit) sees the old file or the new one, never half of one."""
        sftp = await self._sftp_client()
        partial = path + ".tmp"
        await self.remove_file(partial)  # a crashed earlier write may have left one
        attrs = asyncssh.SFTPAttrs(permissions=mode)

        async def write() -> None:
            async with sftp.open(partial, "w", attrs=attrs) as handle:
                # Some servers ignore the mode asked for at creation; set it again before
                # the first byte is written, so the secret is never in a wider file.
                await handle.chmod(mode)
                await handle.write(text)
            await sftp.posix_rename(partial, path)

        await self._step(f"write {path}", write())

    async def remove_file(self, path: str) -> bool:
        """Delete a file; False when it was not there (success for an idempotent remove)."""
        sftp = await self._sftp_client()
        try:
            await self._step(f"remove {path}", sftp.remove(path))
        except SshFileError as exc:
            if isinstance(exc.__cause__, asyncssh.SFTPNoSuchFile):
                return False
            raise
        return True

    async def list_dir(self, path: str) -> list[str] | None:
        """File names in a directory, or None when there is no such directory."""
        sftp = await self._sftp_client()
        try:
            names = await self._step(f"list {path}", sftp.listdir(path))
        except SshFileError as exc:
            if isinstance(exc.__cause__, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
                return None
            raise
        return [str(n) for n in names if str(n) not in (".", "..")]

    async def is_dir(self, path: str) -> bool:
        sftp = await self._sftp_client()
        return await self._step(f"stat {path}", sftp.isdir(path))

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            self._sftp = await self._step("start SFTP", self._conn.start_sftp_client())
        return self._sftp

    def close_sftp(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None

    async def _step(self, what: str, work: Awaitable[T]) -> T:
        try:
            with anyio.fail_after(self._timeout):
                return await work
        except TimeoutError:
            raise SshTimedOut(
                f"{self._target}: {what}: no answer within {self._timeout:g}s"
            ) from None
        except asyncssh.SFTPError as exc:
            raise SshFileError(f"{self._target}: {what}: {first_line(exc.reason)}") from exc
        except (asyncssh.Error, OSError) as exc:
            raise SshConnectionLost(
                f"{self._target}: {what}: connection lost ({type(exc).__name__})"
            ) from None


def _text(output: object) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output if isinstance(output, str) else ""


def connect_options(
    config: SshHostConfig, known_hosts: Path
) -> asyncssh.SSHClientConnectionOptions:
    own_key = config.key_file is not None
    return asyncssh.SSHClientConnectionOptions(
        known_hosts=str(known_hosts),
        connect_timeout=config.connect_timeout_seconds,
        # ~/.ssh/config could send the connection elsewhere or relax checks: only what
        # Setpoint is configured with counts.
        config=[],
        preferred_auth=["publickey"],
        client_keys=[str(config.key_file.expanduser())] if config.key_file else (),
        # With a key file configured, an agent's other keys are not offered.
        agent_path=None if own_key else (),
    )


def known_hosts_of(target: SshTarget, config: SshHostConfig) -> Path:
    if config.known_hosts_file is None:
        raise SshRefused(
            f"{target}: SETPOINT_SSH_KNOWN_HOSTS_FILE is not set; SSH hosts are reached only "
            "with host keys to check them against"
        )
    known_hosts = config.known_hosts_file.expanduser()
    if not known_hosts.is_file():
        raise SshRefused(
            f"{target}: known_hosts file {config.known_hosts_file} does not exist "
            "(SETPOINT_SSH_KNOWN_HOSTS_FILE); host keys are always checked"
        )
    return known_hosts


async def _connect(target: SshTarget, config: SshHostConfig) -> asyncssh.SSHClientConnection:
    known_hosts = known_hosts_of(target, config)
    timeout = config.connect_timeout_seconds
    try:
        # asyncssh's own connect_timeout covers the whole login; the outer deadline (a
        # little later, so the inner one fires first) bounds anything it does not.
        with anyio.fail_after(timeout + min(timeout, 1.0)):
            return await asyncssh.connect(
                target.address,
                target.port,
                username=target.user,
                options=connect_options(config, known_hosts),
            )
    except asyncssh.HostKeyNotVerifiable:
        raise SshRefused(
            f"{target}: host key not accepted: the host is not in known_hosts "
            f"({config.known_hosts_file}) or its key changed"
        ) from None
    except asyncssh.PermissionDenied:
        raise SshRefused(f"{target}: login refused for user {target.user}") from None
    except TimeoutError:
        raise SshUnreachable(f"{target}: no SSH login within {timeout:g}s") from None
    except (asyncssh.Error, OSError) as exc:
        raise SshUnreachable(f"{target}: could not connect ({type(exc).__name__})") from None


@asynccontextmanager
async def open_session(target: SshTarget, config: SshHostConfig) -> AsyncIterator[SshSession]:
    conn = await _connect(target, config)
    try:
        session = SshSession(conn, target, config)
        yield session
        session.close_sftp()
    finally:
        conn.close()
        with anyio.move_on_after(1.0):
            await conn.wait_closed()
