"""The SSH and systemd host adapter: runners as `setpoint-runner@<name>` units on a Linux
host Setpoint reaches over SSH (asyncssh).

It installs nothing it does not own. The operator installs the template unit
`setpoint-runner@.service` and the runner binaries once (docs/runners.md); the adapter
manages only instances of that template and the files in `/etc/setpoint/runners/`:

- start: write `<name>.env` (mode 0600, over SFTP: the registration secret travels as file
  contents, never on a command line), then `systemctl start setpoint-runner@<name>.service`.
- stop: `systemctl stop`. remove: stop, disable (only if someone enabled the unit),
  `systemctl clean --what=state` (the runner's work directory, the template's
  `StateDirectory=`), `reset-failed` when the unit failed, and delete the env file.
- list_processes: the env files, `systemctl show` of the loaded units, and `ps` to see which
  units run a job process (`Runner.Worker`): GitHub's busy flag can lag a job's start by
  minutes, the host's process table does not.

Each call opens one SSH session. Reaching the host is retried when no session was made
(nothing ran). A whole call is retried after a broken session only where repeating it is
harmless, which the three mutations are by construction (see each one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from providers.hosts import systemd_units as units
from providers.hosts.base import ProcessState, RunnerLaunch, RunnerProcess
from providers.hosts.ssh_config import SshHostConfig
from providers.hosts.ssh_session import (
    SshFileError,
    SshHostError,
    SshSession,
    SshTarget,
    open_session,
)
from providers.http_core import RetryPolicy, Sleep, with_retries

T = TypeVar("T")

_RUNNING = frozenset({"active", "activating", "reloading", "deactivating"})
# `systemctl stop` of an instance whose template is gone: "Unit ... not loaded." (exit 5).
# Nothing can run without the template, so for stop that is "already stopped".
_NOT_LOADED = 5
_PS = ("ps", "-e", "-o", "unit=,comm=")  # each process's unit and command name
# Lines the template must hold for the adapter's files to reach the runner.
_TEMPLATE_NEEDS = {
    f"EnvironmentFile={units.RUNNER_DIR}/%i{units.ENV_SUFFIX}": "the runner's env file",
    "StateDirectory=": "a work directory systemd can clean",
}


def _state(active_state: str) -> ProcessState:
    if active_state in _RUNNING:
        return ProcessState.running
    if active_state == "failed":
        return ProcessState.failed
    return ProcessState.stopped


class SshSystemdHost:
    """One SSH host with systemd, as the runner kind uses it (`HostAdapter`)."""

    def __init__(
        self,
        host: str,
        *,
        address: str,
        user: str = "setpoint",
        port: int = 22,
        config: SshHostConfig | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._target = SshTarget(host=host, address=address, user=user, port=port)
        self._config = config or SshHostConfig()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"SshSystemdHost({self._target})"

    @property
    def host(self) -> str:
        return self._target.host

    # -- the protocol ------------------------------------------------------------------

    async def preflight(self) -> str | None:
        try:
            return await self._call("preflight", self._preflight, idempotent=True)
        except SshHostError as exc:
            return str(exc)

    async def list_processes(self) -> list[RunnerProcess]:
        return await self._call("list", self._list, idempotent=True)

    async def start(self, launch: RunnerLaunch) -> RunnerProcess:
        unit = units.unit_of(launch.name)  # a bad name fails here, before any connection

        async def work(session: SshSession) -> RunnerProcess:
            return await self._start(session, launch, unit)

        # Repeating is harmless: a unit found running is returned untouched, the env file
        # is replaced whole by a rename, and `systemctl start` of a started unit does nothing.
        return await self._call(f"start {unit}", work, idempotent=True)

    async def stop(self, name: str) -> None:
        unit = units.unit_of(name)

        async def work(session: SshSession) -> None:
            await session.run("systemctl", "stop", unit, ok=(0, _NOT_LOADED))

        # `systemctl stop` of a stopped unit succeeds and changes nothing: safe to repeat.
        await self._call(f"stop {unit}", work, idempotent=True)

    async def remove(self, name: str) -> None:
        unit = units.unit_of(name)

        async def work(session: SshSession) -> None:
            await self._remove(session, name, unit)

        # Every step leaves the same state when run twice (stop, disable, clean, delete a
        # file that is gone), and each is checked before the next: safe to repeat.
        await self._call(f"remove {unit}", work, idempotent=True)

    # -- the steps ---------------------------------------------------------------------

    async def _preflight(self, session: SshSession) -> str | None:
        where = f"host {self.host}"
        shown = await session.run("systemctl", "cat", units.TEMPLATE_UNIT, ok=(0, 1))
        if shown.exit_status != 0:
            return (
                f"{where}: the template unit {units.TEMPLATE_UNIT} is not installed "
                "(docs/runners.md, the SSH and systemd host)"
            )
        missing = [why for line, why in _TEMPLATE_NEEDS.items() if line not in shown.stdout]
        if missing:
            return f"{where}: {units.TEMPLATE_UNIT} lacks {' and '.join(missing)} (docs/runners.md)"
        if not await session.is_dir(units.RUNNER_DIR):
            return f"{where}: the directory {units.RUNNER_DIR} does not exist (docs/runners.md)"
        if (await session.run(*_PS, ok=(0, 1))).exit_status != 0:
            # Without the unit column the adapter cannot see a job the host runs.
            return f"{where}: `ps -o unit` is not supported (procps built without systemd)"
        return None

    async def _list(self, session: SshSession) -> list[RunnerProcess]:
        files = await session.list_dir(units.RUNNER_DIR)
        if files is None:
            # Fail closed: without its directory the adapter cannot tell "no runners" from
            # "runners it can no longer see" (Invariant 3).
            raise SshFileError(f"host {self.host}: the directory {units.RUNNER_DIR} is missing")
        with_files = {n for n in map(units.name_of_env_file, files) if n is not None}
        loaded = await self._show(session, units.UNIT_PATTERN)
        statuses = {name: s for s in loaded if (name := units.name_of_unit(s.unit)) is not None}
        busy = set()
        if any(s.active_state in _RUNNING for s in statuses.values()):
            listing = await session.run(*_PS)
            busy = units.units_with_job(listing.stdout)
        return [
            self._process(name, statuses.get(name), busy)
            for name in sorted(with_files | statuses.keys())
        ]

    async def _start(self, session: SshSession, launch: RunnerLaunch, unit: str) -> RunnerProcess:
        status = await self._status(session, unit)
        if status is not None and status.active_state in _RUNNING:
            # Already running: its process read its env file when it started; a new file
            # now would change nothing but what the next start reads.
            return self._process(launch.name, status, None)
        await session.write_private_file(
            units.env_path(launch.name),
            units.render_env(
                units.runner_env(
                    name=launch.name,
                    lane=launch.lane,
                    pool=launch.pool,
                    labels=launch.labels,
                    github_url=launch.github_url,
                    registration=launch.registration.reveal(),
                    jit=launch.jit,
                    ephemeral=launch.ephemeral,
                )
            ),
            units.ENV_FILE_MODE,
        )
        await session.run("systemctl", "start", unit)
        return self._process(launch.name, await self._status(session, unit), None)

    async def _remove(self, session: SshSession, name: str, unit: str) -> None:
        status = await self._status(session, unit)
        if status is not None and status.load_state != "not-found":
            await session.run("systemctl", "stop", unit, ok=(0, _NOT_LOADED))
            if status.unit_file_state == "enabled":
                # Only someone else enables a runner unit (start never does); disabling
                # needs the wider right to change unit files, so it is asked for only then.
                await session.run("systemctl", "disable", unit)
            await session.run("systemctl", "clean", "--what=state", unit)
            after = await self._status(session, unit)
            if after is not None and after.active_state == "failed":
                # A failed unit stays loaded (and listed) until its failure is forgotten.
                await session.run("systemctl", "reset-failed", unit)
        await session.remove_file(units.env_path(name))
        await session.remove_file(units.env_path(name) + ".tmp")

    # -- helpers -----------------------------------------------------------------------

    async def _show(self, session: SshSession, *unit_or_pattern: str) -> list[units.UnitStatus]:
        shown = await session.run(
            "systemctl", "show", "-p", ",".join(units.SHOW_PROPERTIES), "--", *unit_or_pattern
        )
        return units.parse_show(shown.stdout)

    async def _status(self, session: SshSession, unit: str) -> units.UnitStatus | None:
        found = [s for s in await self._show(session, unit) if s.unit == unit]
        return found[0] if found else None

    def _process(
        self, name: str, status: units.UnitStatus | None, busy: set[str] | None
    ) -> RunnerProcess:
        unit = units.unit_of(name)
        state = _state(status.active_state if status else "inactive")
        job: bool | None = None
        if busy is not None:
            job = state is ProcessState.running and unit in busy
        return RunnerProcess(name=name, state=state, host_ref=unit, job_running=job)

    async def _call(
        self, label: str, work: Callable[[SshSession], Awaitable[T]], *, idempotent: bool
    ) -> T:
        async def attempt() -> T:
            async with open_session(self._target, self._config) as session:
                return await work(session)

        return await with_retries(
            attempt,
            idempotent=idempotent,
            policy=RetryPolicy(attempts=self._config.retry_attempts, backoff_max=4.0),
            label=f"ssh {self.host} {label}",
            sleep=self._sleep,
        )
