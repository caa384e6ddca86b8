"""The lane kinds of one pass, behind one interface: the engine never names a kind.

Adding a kind (preview lanes, runner lanes) means adding it to `lane_kinds`; planning,
gating, apply, audit and status work for it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from reconciler.fleet import DesiredFleet, load_fleet
from reconciler.kinds.base import ActionExecutor, LaneDiff, LaneKind, Observation
from reconciler.kinds.product.kind import ProductLanes
from reconciler.records.ownership import snapshot
from reconciler.records.secret_store import installation_salt
from reconciler.runtime import Runtime


class UnknownLane(ValueError):
    pass


def product_lanes(runtime: Runtime, fleet: DesiredFleet | None = None) -> ProductLanes:
    return ProductLanes(
        fleet=fleet or load_fleet(runtime.engine),
        ownership=snapshot(runtime.engine),
        client=runtime.dokploy,
        salt=installation_salt(runtime.engine),
        environ=runtime.environ,
        store=runtime.secret_store,
    )


@dataclass
class LaneRegistry:
    kinds: list[LaneKind]

    def all_lanes(self) -> list[str]:
        return sorted({lane for kind in self.kinds for lane in kind.all_lanes()})

    def kind_of(self, lane: str) -> LaneKind:
        for kind in self.kinds:
            if lane in kind.all_lanes():
                return kind
        raise UnknownLane(f"unknown lane {lane}")

    def check(self, lanes: Sequence[str]) -> None:
        known = self.all_lanes()
        unknown = sorted(set(lanes) - set(known))
        if unknown:
            raise UnknownLane(
                f"unknown lane(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
            )

    def generation(self, lane: str) -> int | None:
        return self.kind_of(lane).generation(lane)

    def apply_policy(self, lane: str) -> str | None:
        return self.kind_of(lane).apply_policy(lane)

    def owned_count(self) -> int:
        return sum(kind.owned_count() for kind in self.kinds)

    def remember(self, engine: Engine) -> bool:
        return any([kind.remember(engine) for kind in self.kinds])  # every kind, no short cut

    def _grouped(self, lanes: Sequence[str]) -> list[tuple[LaneKind, list[str]]]:
        return [(kind, [lane for lane in lanes if lane in kind.all_lanes()]) for kind in self.kinds]

    async def preflight(self, lanes: Sequence[str]) -> list[str]:
        """Why the providers behind `lanes` cannot be used; empty when all answer."""
        failures = []
        for kind, mine in self._grouped(lanes):
            if mine:
                failure = await kind.preflight()
                if failure is not None:
                    failures.append(failure)
        return failures

    async def observe(self, lanes: Sequence[str]) -> Observation:
        merged = Observation()
        for kind, mine in self._grouped(lanes):
            if not mine:
                continue
            seen = await kind.observe(mine)
            merged.lanes.update(seen.lanes)
            merged.fingerprints.update(seen.fingerprints)
            merged.problems.extend(seen.problems)
            merged.notes.extend(seen.notes)
        return merged

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        return self.kind_of(lane).diff(lane, observation)

    def executors(self, runtime: Runtime) -> dict[str, ActionExecutor]:
        """One executor per lane, shared by the lanes of a kind."""
        out: dict[str, ActionExecutor] = {}
        for kind in self.kinds:
            executor = kind.executor(runtime)
            for lane in kind.all_lanes():
                out[lane] = executor
        return out


def lane_kinds(runtime: Runtime, fleet: DesiredFleet | None = None) -> LaneRegistry:
    fleet = fleet or load_fleet(runtime.engine)
    return LaneRegistry(kinds=[product_lanes(runtime, fleet)])
