"""Register a runner and see it online: a JIT config where GitHub offers one, a registration
token otherwise (a GitHub without JIT answers 404 or 403 for it).

The secret is wrapped in a `SecretValue` the moment it leaves GitHub's answer, and is given
only to the host adapter. With a JIT config the runner's id is known at once; with a token
the runner registers itself, and is found by its name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

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

    async def wait_online(
        self, scope: RunnerScope, name: str, runner_id: int | None, adapter: HostAdapter
    ) -> tuple[int | None, str | None]:
        """(the runner's id if GitHub has it, None once it is online or else why not)."""
        deadline = time.monotonic() + self.timings.online_timeout
        while True:
            runner = await self.find(scope, name, runner_id)
            if runner is not None:
                runner_id = runner.id
                if runner.online:
                    return runner_id, None
            # The host's view too: a process that failed will never come online.
            process = next((p for p in await adapter.list_processes() if p.name == name), None)
            if process is not None and process.state is ProcessState.failed:
                return runner_id, f"its process failed on host {adapter.host}"
            if time.monotonic() >= deadline:
                return runner_id, f"not online within {self.timings.online_timeout:.0f} s"
            await anyio.sleep(min(self.timings.poll, max(0.0, deadline - time.monotonic())))
