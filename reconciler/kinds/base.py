"""The contract between the engine and a lane kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.core.plans import Action, Blocker, Change, Op, Risk

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from reconciler.runtime import Runtime


@dataclass(frozen=True)
class ProposedAction:
    """An action before the planner numbers it. `key` is local to the lane diff."""

    key: str
    op: Op
    target: str
    risk: Risk
    reason: str
    changes: list[Change] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LaneDiff:
    lane: str
    actions: list[ProposedAction] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ObservationProblem:
    lane: str | None  # None: the whole observation is unusable
    reason: str


@dataclass
class Observation:
    """One snapshot per pass. `lanes` holds what each lane kind needs, by lane name."""

    lanes: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    problems: list[ObservationProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def incomplete_for(self, lane: str) -> list[str]:
        return [p.reason for p in self.problems if p.lane in (None, lane)]

    @property
    def globally_incomplete(self) -> bool:
        return any(p.lane is None for p in self.problems)


@dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    message: str
    outputs: dict[str, Any] = field(default_factory=dict)


class ActionFailed(Exception):
    """An action could not complete; the message is safe to show and to audit."""


class ActionExecutor(Protocol):
    async def execute(self, action: Action) -> ActionOutcome: ...


class LaneKind(Protocol):
    """What a kind of lane supplies to the engine.

    `diff` must be pure; side effects belong in `observe` (reads) and the executor (writes).
    The engine owns everything else: plans, gating, leases, audit and status.
    """

    kind: str

    def all_lanes(self) -> list[str]:
        """Desired lanes, plus lanes it still owns objects for that are no longer desired."""
        ...

    def generation(self, lane: str) -> int | None: ...

    def apply_policy(self, lane: str) -> str | None: ...

    def owned_count(self) -> int: ...

    def remember(self, engine: Engine) -> bool:
        """Record what must outlive a lane's desired entry (e.g. its protect flag);
        True when the ownership registry changed."""
        ...

    async def preflight(self) -> str | None:
        """None when the kind's provider credentials work, else why not."""
        ...

    async def observe(self, lanes: Sequence[str]) -> Observation: ...

    def diff(self, lane: str, observation: Observation) -> LaneDiff: ...

    def executor(self, runtime: Runtime) -> ActionExecutor: ...
