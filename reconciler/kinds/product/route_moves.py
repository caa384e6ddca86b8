"""Routes a plan moves from a lane it deletes to a lane that declares them (a rename).

A renamed product (or lane) without `renamedFrom` gets a new service, and its old lane's
service is deleted by the same plan. The old service still routes the hosts the new lane
declares, which would be a `route_conflict`; but the plan frees them itself: the old lane
releases the route (after the new service exists), then the new lane claims it. Pure: the
desired lanes and one observation in, the moves out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.kinds.base import Observation
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.observed import ObservedProductLane


@dataclass(frozen=True)
class RouteMove:
    route: str  # host and path
    from_lane: str  # a lane this plan deletes
    from_service: str  # its service's id
    domain_id: str  # the domain that routes `route` there
    to_lane: str  # the desired lane that declares `route`
    to_service: str | None  # its service's id; None while this plan creates it

    @property
    def ref(self) -> str:
        """What the release provides and the claim waits for."""
        return f"route:{self.route}@{self.from_service}"


def _deleted_here(
    desired: Mapping[str, ProductLane], observation: Observation, failed: set[str | None]
) -> dict[str, ObservedProductLane]:
    """Removed lanes whose service this plan deletes (as `diff._removed_lane` decides)."""
    return {
        lane: seen
        for lane, seen in sorted(observation.lanes.items())
        if lane not in desired
        and lane not in failed
        and seen.owned is not None
        and seen.service is not None
        and not seen.owned.protected
    }


@dataclass(frozen=True)
class RoutePlan:
    """What one plan does to routes: the services it deletes (never a route's rival) and
    the routes it moves from them."""

    deleted: frozenset[str] = frozenset()  # service ids
    moves: tuple[RouteMove, ...] = ()


def plan_routes(desired: Mapping[str, ProductLane], observation: Observation) -> RoutePlan:
    failed = {p.lane for p in observation.problems}
    if None in failed:
        return RoutePlan()
    deleted = _deleted_here(desired, observation, failed)
    ids = frozenset(seen.service.id for seen in deleted.values() if seen.service)
    return RoutePlan(ids, tuple(_route_moves(desired, observation, failed, deleted)))


def _route_moves(
    desired: Mapping[str, ProductLane],
    observation: Observation,
    failed: set[str | None],
    deleted: dict[str, ObservedProductLane],
) -> list[RouteMove]:
    """Every route a lane of this plan would add that only services this plan deletes have.
    A route another desired lane declares too, or another service routes, is not moved: it
    stays a conflict."""
    by_service = {seen.service.id: lane for lane, seen in deleted.items() if seen.service}
    moves: list[RouteMove] = []
    for key, lane in sorted(desired.items()):
        seen = observation.lanes.get(key)
        if seen is None or key in failed:
            continue
        for route, ids in sorted(seen.route_holder_ids.items()):
            if not lane.route_rivals.get(route) and all(i in by_service for i in ids):
                holders = [(by_service[i], deleted[by_service[i]]) for i in ids]
                moves.extend(_moves(seen, route, key, holders))
    return moves


def _moves(
    to: ObservedProductLane,
    route: str,
    to_lane: str,
    holders: list[tuple[str, ObservedProductLane]],
) -> list[RouteMove]:
    return [
        RouteMove(
            route,
            lane,
            seen.service.id,
            domain.domain_id,
            to_lane,
            to.service.id if to.service else None,
        )
        for lane, seen in holders
        if seen.service is not None
        for domain in seen.service.domains
        if domain.key == route
    ]
