"""The inventory: what Setpoint owns outside, as one snapshot the kinds plan from.

Read from the ownership registry (`records/ownership.py`) once per pass. Every object
names the kind and the lane that own it, so a kind plans only for its own objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
class OwnershipSnapshot:
    """The registry at one moment; every lookup is by key."""

    objects: tuple[Owned, ...]

    def __post_init__(self) -> None:
        by_lane: dict[str, list[Owned]] = {}
        by_kind: dict[str, int] = {}
        for owned in self.objects:
            by_lane.setdefault(owned.lane, []).append(owned)
            by_kind[owned.kind] = by_kind.get(owned.kind, 0) + 1
        object.__setattr__(self, "_by_lane", by_lane)
        object.__setattr__(self, "_by_ref", {o.ref: o for o in self.objects})
        object.__setattr__(self, "_by_kind", by_kind)

    def for_lane(self, lane: str) -> list[Owned]:
        by_lane: dict[str, list[Owned]] = self._by_lane  # type: ignore[attr-defined]
        return list(by_lane.get(lane, ()))

    def owner_of(self, ref: ObjectRef) -> Owned | None:
        by_ref: dict[ObjectRef, Owned] = self._by_ref  # type: ignore[attr-defined]
        return by_ref.get(ref)

    def lanes_of_kind(self, kind: str) -> set[str]:
        return {o.lane for o in self.objects if o.kind == kind}

    def count(self, kind: str) -> int:
        by_kind: dict[str, int] = self._by_kind  # type: ignore[attr-defined]
        return by_kind.get(kind, 0)
