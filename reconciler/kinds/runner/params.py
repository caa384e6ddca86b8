"""The parameters of each runner operation: one model per operation, built by the diff,
stored in the plan, read back typed by the executor (`RunnerExecutor`). Never a secret:
the registration is made at apply time.

Every operation acts on one runner slot (`SlotParams`); the pool's launch settings are
there when the lane is still desired, and required by the operations that start a runner.
"""

from __future__ import annotations

from reconciler.kinds.base import OpParams
from reconciler.kinds.runner.register import Starting


class SlotParams(OpParams):
    name: str
    scope: str  # "org" or "owner/repo", as `RunnerScope.parse` reads it
    host: str
    runner_id: int | None = None  # the registration on GitHub, if any
    owns_process: bool = False
    forget: list[str] = []  # registration ids GitHub no longer has
    idle_seen_at: float | None = None  # when a drain first saw the runner idle
    # The pool's launch settings (none when the lane is no longer desired).
    pool: str | None = None
    labels: list[str] = []
    image: str | None = None
    ephemeral: bool | None = None
    github_url: str | None = None


class LaunchParams(SlotParams):
    """Operations that start a runner: the pool's launch settings are required."""

    pool: str
    image: str
    ephemeral: bool
    github_url: str


class Record(SlotParams):
    orphan: str | None = None  # what is orphaned: marked now, removed in a later pass
    offline: bool = False  # registered and offline while its process runs: watched


class RemoveOrphan(SlotParams):
    pass


class Create(LaunchParams):
    pass


class Relabel(LaunchParams):
    pass


class Restart(LaunchParams):
    pass


class Drain(SlotParams):
    pass


class Remove(SlotParams):
    pass


class StartedRunner(OpParams):
    """A start not seen online yet, as its process's ownership facts hold it
    (`register.Starting.facts()`)."""

    starting_since: float
    starting_runner_id: int | None = None
    starting_jit: bool = False
    starting_fresh_process: bool = False

    def started(self) -> Starting:
        return Starting(
            since=self.starting_since,
            runner_id=self.starting_runner_id,
            jit=self.starting_jit,
            fresh_process=self.starting_fresh_process,
        )


class AwaitOnline(SlotParams):
    starting: StartedRunner  # the start looked at again
