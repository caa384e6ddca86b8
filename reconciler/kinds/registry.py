"""The lane kinds of one pass behind one interface: routes lane keys to their kind.

Lane keys carry their kind (`product:shop/testing`), so every lookup here is a dictionary
lookup, and an observation problem of one kind is scoped to that kind's lanes: an outage
of one provider never blocks the lanes of another.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from reconciler.core import shared_reads
from reconciler.core.notices import ENGINE_WORDS, LaneNotices
from reconciler.core.outcomes import Facts
from reconciler.core.plans import kind_of_lane, name_of_lane
from reconciler.core.reasons import ReasonBook, reason_book
from reconciler.errors import ActionParamsRefused, UnknownLane
from reconciler.kinds.base import (
    ActionExecutor,
    LaneDiff,
    LaneKind,
    LanePolicy,
    NoticingKind,
    Observation,
    PreflightFailure,
    params_problem,
    preflight_failure,
)
from reconciler.runtime import Runtime


@dataclass
class KindObservation:
    """Each kind's observation, kept apart: fingerprints and problems never mix across kinds."""

    by_kind: dict[str, Observation] = field(default_factory=dict)

    def of(self, kind: str) -> Observation:
        return self.by_kind.get(kind, Observation())

    def fingerprints(self, lanes: Collection[str] | None = None) -> dict[str, str]:
        """What was read, for `lanes` only when given."""
        merged: dict[str, str] = {}
        for observation in self.by_kind.values():
            if lanes is None:
                merged.update(observation.fingerprints)
            else:
                merged.update(observation.fingerprints_of(lanes))
        return merged

    def notes(self) -> list[str]:
        return [note for o in self.by_kind.values() for note in o.notes]

    def seen_facts(self) -> list[Facts]:
        return [facts for o in self.by_kind.values() for facts in o.seen_facts]


@dataclass
class LaneRegistry:
    kinds: list[LaneKind]

    def __post_init__(self) -> None:
        self._kinds = {kind.name: kind for kind in self.kinds}
        self._lanes = {lane: kind for kind in self.kinds for lane in kind.lanes()}
        self.reasons: ReasonBook = reason_book((kind.name, kind.reasons) for kind in self.kinds)

    def all_lanes(self) -> list[str]:
        return sorted(self._lanes)

    def kind_of(self, lane: str) -> LaneKind:
        kind = self._lanes.get(lane)
        if kind is None:
            raise UnknownLane(f"unknown lane {lane}")
        return kind

    def kind_named(self, name: str) -> LaneKind | None:
        return self._kinds.get(name)

    def notices_of(self, lane: str) -> LaneNotices:
        """The words the lane's kind tells its news in; a lane already removed from desired
        state is known by its key's kind."""
        kind = self._kinds.get(kind_of_lane(lane))
        return kind.notices if isinstance(kind, NoticingKind) else ENGINE_WORDS

    def knows(self, lane: str) -> bool:
        return lane in self._lanes

    def resolve(self, names: Sequence[str]) -> list[str]:
        """Lane keys for what a user typed: a full key, or a bare name one kind has."""
        by_name: dict[str, list[str]] = {}
        for key in self._lanes:
            by_name.setdefault(name_of_lane(key), []).append(key)
        resolved, unknown = [], []
        for name in names:
            if name in self._lanes:
                resolved.append(name)
            elif len(by_name.get(name, [])) == 1:
                resolved.append(by_name[name][0])
            elif by_name.get(name):
                raise UnknownLane(
                    f"lane name {name} is ambiguous: say which, one of "
                    f"{', '.join(sorted(by_name[name]))}"
                )
            else:
                unknown.append(name)
        if unknown:
            raise UnknownLane(
                f"unknown lane(s) {', '.join(unknown)}; known: "
                f"{', '.join(self.all_lanes()) or 'none'}"
            )
        return resolved

    def policy(self, lane: str) -> LanePolicy:
        return self.kind_of(lane).policy(lane)

    def generation(self, lane: str) -> int | None:
        return self.policy(lane).generation if self.knows(lane) else None

    def grouped(self, lanes: Sequence[str]) -> Iterator[tuple[LaneKind, list[str]]]:
        """The kinds that have some of `lanes`, each with its own."""
        mine: dict[str, list[str]] = {}
        for lane in lanes:
            mine.setdefault(self.kind_of(lane).name, []).append(lane)
        for name, kind_lanes in mine.items():
            yield self._kinds[name], kind_lanes

    async def preflight(self, lanes: Sequence[str]) -> dict[str, PreflightFailure]:
        """Kind name -> why its providers cannot be used, for the kinds behind `lanes`."""
        failures: dict[str, PreflightFailure] = {}
        for kind, _ in self.grouped(lanes):
            # One preflight per kind serves every batch of a loop pass (core/shared_reads.py).
            failure = preflight_failure(
                await shared_reads.once(("preflight", kind.name), kind.preflight)
            )
            if failure is not None:
                failures[kind.name] = failure
        return failures

    async def observe(self, lanes: Sequence[str], skip: Sequence[str] = ()) -> KindObservation:
        """Observe every kind behind `lanes`, except the kinds in `skip` (failed preflight)."""
        seen = KindObservation()
        for kind, kind_lanes in self.grouped(lanes):
            if kind.name not in skip:
                seen.by_kind[kind.name] = await kind.observe(kind_lanes)
        return seen

    def diff(self, lane: str, observation: KindObservation) -> LaneDiff:
        """Raises `ActionParamsRefused` when the kind built parameters its own operation's
        model refuses: the plan is refused before anything is stored or audited."""
        kind = self.kind_of(lane)
        try:
            return kind.diff(lane, observation.of(kind.name))
        except ValidationError as exc:
            raise ActionParamsRefused(f"{lane}: {params_problem(exc)}") from None

    def executors(self, runtime: Runtime, lanes: Sequence[str]) -> dict[str, ActionExecutor]:
        """Kind name -> one executor for this apply."""
        return {kind.name: kind.executor(runtime) for kind, _ in self.grouped(lanes)}
