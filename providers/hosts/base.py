"""The one protocol every host adapter speaks: where a runner lane's process lives.

A runner lane is one self-hosted GitHub Actions runner. GitHub knows its registration
(id, name, status, busy, labels); the host adapter knows its process. The runner kind joins
the two by runner name, so names are unique per pool and carry the lane (`RunnerLaunch.name`).

Adapters are idempotent by name: starting a runner that already runs, or stopping or removing
one that is gone, succeeds. The registration secret travels in `RunnerLaunch.registration`
as a `RegistrationSecret` and must reach the host only through a channel that keeps it out of
process listings and logs (Dokploy env, a 0600 environment file), never a command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class RegistrationSecret(Protocol):
    """A secret that shows its value only when asked (`reconciler.secret_values.SecretValue`
    is one). A protocol, not an import: providers never import the reconciler."""

    def reveal(self) -> str: ...


class ProcessState(StrEnum):
    running = "running"
    stopped = "stopped"
    failed = "failed"  # the host tried to run it and it exited or never started


@dataclass(frozen=True)
class RunnerLaunch:
    """Everything a host needs to run one runner. `registration` is a JIT config (preferred)
    or a registration token; `jit` says which."""

    name: str
    lane: str
    pool: str
    image: str
    labels: tuple[str, ...]
    github_url: str  # https://github.com/OWNER/REPO or https://github.com/ORG
    registration: RegistrationSecret = field(repr=False)
    jit: bool = True
    ephemeral: bool = True


@dataclass(frozen=True)
class RunnerProcess:
    """A runner process as its host sees it. `job_running` is None when the adapter cannot
    look inside the host; `host_ref` is the adapter's own id (application id, unit name)."""

    name: str
    state: ProcessState
    host_ref: str
    lane: str | None = None
    pool: str | None = None
    job_running: bool | None = None


@runtime_checkable
class HostAdapter(Protocol):
    """One host (a Dokploy server, an SSH host with systemd) as the runner kind uses it."""

    @property
    def host(self) -> str:
        """The `Host` object's name."""
        ...

    async def preflight(self) -> str | None:
        """None when the host answers with working credentials, else why not (one line)."""
        ...

    async def list_processes(self) -> list[RunnerProcess]:
        """Every runner process this adapter manages on the host (only its own)."""
        ...

    async def start(self, launch: RunnerLaunch) -> RunnerProcess:
        """Install (if needed) and start the runner; idempotent by `launch.name`."""
        ...

    async def stop(self, name: str) -> None:
        """Stop the process; a process that is already stopped or gone is success."""
        ...

    async def remove(self, name: str) -> None:
        """Stop and delete everything the adapter made for the runner; gone is success."""
        ...
