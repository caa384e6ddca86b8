"""The inventory: what Setpoint owns outside, as one snapshot the kinds plan from.

Read from the ownership registry (`records/ownership.py`) once per pass. Every object
names the kind and the lane that own it, so a kind plans only for its own objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from reconciler.core.outcomes import ObjectRef


@dataclass(frozen=True)
class Owned:
    provider: str
    object_type: str
    object_id: str
    name: str
    kind: str
    lane: str
    protected: bool
    adopted: bool
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.provider, self.object_type, self.object_id)


@dataclass(frozen=True)
class UnfinishedCreate:
    """A create whose intent is in the audit trail but whose result is not: its worker died
    while the answer was in flight, so the object may exist without being owned."""

    lane: str
    op: str
    target: str
    at: datetime  # when the intent was recorded; the object cannot be older
    plan_id: str
    action_id: str


@dataclass(frozen=True)
class UnfinishedRun:
    """A run (a deploy, say) whose intent is in the audit trail but whose result is not, nor
    any later result of the same operation on the same target: its worker died while it was
    under way, so it may still be queued or running outside. A kind decides how long such a
    run is awaited before it is taken for lost."""

    lane: str
    op: str
    target: str
    at: datetime  # when the intent was recorded, just before the run was asked for
    plan_id: str
    action_id: str
    changes: tuple[Mapping[str, Any], ...] = ()  # as the intent recorded them (before, after)


@dataclass(frozen=True)
class OwnershipSnapshot:
    """The registry at one moment; every lookup is by key."""

    objects: tuple[Owned, ...]
    # Creates of interrupted applies, which a kind may offer to reclaim.
    unfinished: tuple[UnfinishedCreate, ...] = ()
    # Runs of interrupted applies, which a kind may await instead of asking for them again.
    unfinished_runs: tuple[UnfinishedRun, ...] = ()

    def unfinished_for(self, lane: str, target: str) -> list[UnfinishedCreate]:
        return [u for u in self.unfinished if u.lane == lane and u.target == target]

    def unfinished_runs_for(self, lane: str, op: str) -> list[UnfinishedRun]:
        """The lane's unfinished runs of `op`, oldest first."""
        return [u for u in self.unfinished_runs if u.lane == lane and u.op == op]

    @cached_property
    def _by_lane(self) -> dict[str, list[Owned]]:
        by_lane: dict[str, list[Owned]] = {}
        for owned in self.objects:
            by_lane.setdefault(owned.lane, []).append(owned)
        return by_lane

    @cached_property
    def _by_ref(self) -> dict[ObjectRef, Owned]:
        return {owned.ref: owned for owned in self.objects}

    @cached_property
    def _by_kind(self) -> Counter[str]:
        return Counter(owned.kind for owned in self.objects)

    def for_lane(self, lane: str) -> list[Owned]:
        return list(self._by_lane.get(lane, ()))

    def owner_of(self, ref: ObjectRef) -> Owned | None:
        return self._by_ref.get(ref)

    def lanes_of_kind(self, kind: str) -> set[str]:
        return {o.lane for o in self.objects if o.kind == kind}

    def count(self, kind: str) -> int:
        return self._by_kind[kind]
