"""What the operator's sinks are told, and in whose words: the engine's triggers and a kind's.

The engine tells of the states it knows in every kind (an apply failed, a lane Degraded or
Stalled, refused credentials, a plan held back by a guard, a broken audit chain). A kind
whose states mean more to an operator in its own words says so in its `notices`: a runner
pool's Stalled lane is an unhealthy runner, an applied plan that removed a preview's lane
tore the preview down. The engine never names a kind: it asks the lane's kind for its words
and falls back to its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EngineNotice(StrEnum):
    """The triggers the engine tells of in any kind (stored as their value)."""

    apply_failed = "apply_failed"
    lane_degraded = "lane_degraded"
    lane_stalled = "lane_stalled"
    credentials_refused = "credentials_refused"
    plan_blocked = "plan_blocked"
    audit_chain_broken = "audit_chain_broken"
    test = "test"


@dataclass(frozen=True)
class Notice:
    """One trigger a message can be about: `code` is what records and filters keep, `title`
    what the message's title says after the lane's name."""

    code: str
    title: str


ENGINE_NOTICES: dict[EngineNotice, Notice] = {
    EngineNotice.apply_failed: Notice(EngineNotice.apply_failed, "apply failed"),
    EngineNotice.lane_degraded: Notice(
        EngineNotice.lane_degraded, "Degraded: a health check fails"
    ),
    EngineNotice.lane_stalled: Notice(EngineNotice.lane_stalled, "Stalled"),
    EngineNotice.credentials_refused: Notice(
        EngineNotice.credentials_refused, "credentials refused"
    ),
    EngineNotice.plan_blocked: Notice(EngineNotice.plan_blocked, "plan blocked by a guard"),
    EngineNotice.audit_chain_broken: Notice(
        EngineNotice.audit_chain_broken, "the audit chain is broken"
    ),
    EngineNotice.test: Notice(EngineNotice.test, "test notification"),
}


@dataclass(frozen=True)
class LaneNotices:
    """A kind's own words for its lanes' news, where the engine's do not fit.

    `stalled`: what a Stalled lane of this kind is told as (else `lane_stalled`).
    `removed`: what an applied plan that removed one of its lanes is told as (else an
    ordinary removal tells nothing: the operator asked for it)."""

    stalled: Notice | None = None
    removed: Notice | None = None

    def when_stalled(self) -> Notice:
        return self.stalled or ENGINE_NOTICES[EngineNotice.lane_stalled]


ENGINE_WORDS = LaneNotices()
