"""What one executed action came to: Done, Retry (not yet, try again after N seconds) or Failed.

An executor reports outcomes and writes no records. A `Done` carries the ownership changes
the action made (objects claimed, facts learned, objects released); the apply engine records
them in the ownership registry beside the action's audit record, so every kind's objects
are recorded the same way. Exceptions never leave `apply_run.py`: `run_executor` is the one
place that turns them into outcomes (kopf's `execute_handler_once`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class ObjectRef:
    """An outside object: provider, type and the provider's id for it."""

    provider: str
    object_type: str
    object_id: str


@dataclass(frozen=True)
class Claim:
    """The action created (or found and took, when explicitly adopting) an object."""

    ref: ObjectRef
    name: str
    protected: bool = False
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    """What the kind must remember about an owned object (merged into what it had)."""

    ref: ObjectRef
    facts: Mapping[str, Any]


@dataclass(frozen=True)
class Done:
    """`provided`: the plan refs the action made or found (`project:shop`), to the
    provider's id; the engine gives them to later actions that need them, whichever kind's
    lane those are (a project a product and its previews share is made once)."""

    message: str
    outputs: Mapping[str, Any] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    facts: tuple[Facts, ...] = ()
    releases: tuple[ObjectRef, ...] = ()
    provided: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Retry:
    """Not yet: the lane stops here without failing, and is tried again after `after` s.

    `claims`, `facts` and `releases` are recorded as a `Done`'s are (what the attempt did
    establish: a runner started and now awaited, the configuration a deployment now runs).
    `stalled` shows the lane Stalled, with `reason`, until then: it needs attention, not only
    time (a failing health check, say).
    """

    after: float
    reason: str
    facts: tuple[Facts, ...] = ()
    stalled: bool = False
    # What the lane's Stalled condition names as its reason (a reason the kind declares,
    # such as a product's `deploy_failed`); None: a failing health check.
    stalled_as: str | None = None
    claims: tuple[Claim, ...] = ()
    releases: tuple[ObjectRef, ...] = ()
    # What the provider says about a failure (a failed deployment's row and the tail of its
    # log), redacted: recorded with the action's result and shown with the lane and plan.
    evidence: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Failed:
    message: str
    # The provider refused the credentials this action's object (they work elsewhere):
    # an operator must grant access; the lane's other actions and other lanes go on.
    access_denied: bool = False


Outcome = Done | Retry | Failed


class ActionResult(StrEnum):
    """What the engine made of one action's outcome, declared from best to worst (a lane
    shows its worst): Done is ok, Retry is retry, Failed is failed; not_run: never started
    (a dependency failed, the lease was lost)."""

    ok = "ok"
    not_run = "not_run"
    retry = "retry"
    failed = "failed"


def worst_result(results: Iterable[ActionResult]) -> ActionResult:
    """The worst of `results` ("failed" > "retry" > "not_run" > "ok"); ok when there are none."""
    ranked = list(ActionResult)
    return max(results, key=ranked.index, default=ActionResult.ok)


class LaneOutcome(StrEnum):
    """What became of one lane in a pass or an apply: the loop's report, a workflow
    request's verdict, and the news a kind is told (`kinds.base.LaneNews`, where "applying"
    is sent as the lane's actions start)."""

    converged = "converged"
    # converged, but its health check fails now (a scheduled pass looked again)
    degraded = "degraded"
    blocked = "blocked"
    awaiting_operator = "awaiting_operator"
    applying = "applying"
    applied = "applied"
    apply_failed = "apply_failed"
    refused = "refused"
    waiting = "waiting"
    # a scheduled pass wrote the lane's known-good state back (`onFailedHealth: rollback`)
    # and applied it in the same pass
    rolled_back = "rolled_back"


_LANE_AFTER_ACTIONS = {
    ActionResult.ok: LaneOutcome.applied,
    ActionResult.retry: LaneOutcome.waiting,
    ActionResult.failed: LaneOutcome.apply_failed,
    ActionResult.not_run: LaneOutcome.apply_failed,
}


def lane_outcome(results: Iterable[ActionResult]) -> LaneOutcome:
    """A lane's outcome once its actions ended: its worst action's."""
    return _LANE_AFTER_ACTIONS[worst_result(results)]
