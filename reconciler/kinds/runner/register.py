"""Register a runner and see it online: a JIT config where GitHub offers one, a registration
token otherwise (a GitHub without JIT answers 404 or 403 for it).

The secret is wrapped in a `SecretValue` the moment it leaves GitHub's answer, and is given
only to the host adapter. With a JIT config the runner's id is known at once; with a token
the runner registers itself, and is found by its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.github.errors import GitHubForbidden, GitHubNotFound
from providers.github.models import Runner, RunnerScope
from providers.github.runners import RunnersApi
from providers.hosts.base import HostAdapter, ProcessState
from reconciler.secret_values import SecretValue

RUNNER_GROUP = 1  # GitHub's Default runner group


@dataclass(frozen=True)
class RunnerTimings:
    online_timeout: float
    poll: float
    idle_window: float
    busy_retry: float


@dataclass(frozen=True)
class Registration:
    secret: SecretValue
    jit: bool
    runner_id: int | None  # known up front with a JIT config


@dataclass
class Registrar:
    github: RunnersApi
    timings: RunnerTimings

    async def register(self, scope: RunnerScope, name: str, labels: list[str]) -> Registration:
        """Raises GitHubConflict when a runner of that name exists already."""
        try:
            jit = await self.github.generate_jit_config(scope, name, RUNNER_GROUP, labels)
        except (GitHubNotFound, GitHubForbidden):
            token = await self.github.create_registration_token(scope)
            return Registration(SecretValue(token.token.get_secret_value()), False, None)
        secret = SecretValue(jit.encoded_jit_config.get_secret_value())
        return Registration(secret, True, jit.runner.id)

    async def find(self, scope: RunnerScope, name: str, runner_id: int | None) -> Runner | None:
        if runner_id is not None:
            try:
                return await self.github.get_runner(scope, runner_id)
            except GitHubNotFound:
                return None
        return next((r for r in await self.github.list_runners(scope) if r.name == name), None)

    async def look_online(
        self, scope: RunnerScope, name: str, runner_id: int | None, adapter: HostAdapter
    ) -> Sighting:
        """One look, on GitHub and on the host: no waiting here (the lane waits, parked)."""
        runner = await self.find(scope, name, runner_id)
        if runner is not None:
            runner_id = runner.id
            if runner.online:
                return Sighting(runner_id, online=True)
        # The host's view too: a process that failed will never come online.
        process = next((p for p in await adapter.list_processes() if p.name == name), None)
        if process is not None and process.state is ProcessState.failed:
            return Sighting(runner_id, failed=f"its process failed on host {adapter.host}")
        return Sighting(runner_id)


@dataclass(frozen=True)
class Sighting:
    """What one look at a started runner found."""

    runner_id: int | None  # GitHub's id for it, once GitHub has it
    online: bool = False
    failed: str | None = None  # why it will never come online


@dataclass(frozen=True)
class Starting:
    """A runner started and not yet seen online: kept on its process's ownership record, so
    the lane waits parked (a `Retry`) and the next look knows what to clean up."""

    since: float  # the kind's clock when the process was started
    runner_id: int | None
    jit: bool
    fresh_process: bool  # the start made the process (cleanup removes it; else stops it)

    def facts(self) -> dict[str, object]:
        return {
            "starting_since": self.since,
            "starting_runner_id": self.runner_id,
            "starting_jit": self.jit,
            "starting_fresh_process": self.fresh_process,
        }

    @classmethod
    def of(cls, facts: Mapping[str, object]) -> Starting | None:
        since = facts.get("starting_since")
        if not isinstance(since, int | float):
            return None
        runner_id = facts.get("starting_runner_id")
        return cls(
            since=float(since),
            runner_id=runner_id if isinstance(runner_id, int) else None,
            jit=facts.get("starting_jit") is True,
            fresh_process=facts.get("starting_fresh_process") is True,
        )


STARTED_DONE: dict[str, object] = dict.fromkeys(Starting(0.0, None, False, False).facts())
