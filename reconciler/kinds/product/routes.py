"""Who already routes a lane's hosts: every domain in Dokploy, not only the lane's own.

A lane that would add a host and path another service already routes (owned by another lane,
or by no one) must not get it with a safe action: the diff turns what is found here into a
`route_conflict` blocker. `project.all` lists services without their domains, so the domains
of the other services are read, a bounded number at a time, and only when some lane would add
a route its own service does not have yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployError
from providers.dokploy.models import Application, Compose, Domain, Project
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.outcomes import ObjectRef
from reconciler.core.plans import object_fingerprint
from reconciler.kinds.base import Observation, ObservationProblem
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.observed import ObservedProductLane
from reconciler.kinds.product.ops import DOKPLOY
from reconciler.kinds.product.services import identify

READ_CONCURRENCY = 8


@dataclass(frozen=True)
class _Service:
    type: str
    id: str
    name: str


def missing_routes(lane: ProductLane, seen: ObservedProductLane) -> set[str]:
    """The lane's routes its own service does not have yet: the ones it would add."""
    own = {d.key for d in seen.service.domains} if seen.service else set()
    return {d.key for d in lane.domains} - own


def _own_ids(seen: ObservedProductLane) -> set[str]:
    """The lane's own service, however it was seen: read, owned, or left by its own apply."""
    ids = {seen.service.id if seen.service else None, seen.owned.object_id if seen.owned else None}
    ids.add(seen.reclaimable.id if seen.reclaimable else None)
    return {i for i in ids if i is not None}


def _listed(projects: Sequence[Project]) -> list[_Service]:
    found: list[_Service] = []
    for project in projects:
        for environment in project.environments:
            services: list[Application | Compose] = [
                *environment.applications,
                *environment.compose,
            ]
            for service in services:
                strategy, service_id = identify(service)
                found.append(_Service(strategy.type.value, service_id, service.name))
    return found


class RouteReader:
    """Reads every other service's domains once per observation, when a lane needs them."""

    def __init__(self, client: DokployClient, ownership: OwnershipSnapshot, salt: str) -> None:
        self._client = client
        self._ownership = ownership
        self._salt = salt

    async def observe(
        self, lanes: Sequence[ProductLane], projects: Sequence[Project], observation: Observation
    ) -> None:
        failed = {p.lane for p in observation.problems}
        wanted = {
            lane.lane: set()
            if lane.lane in failed
            else missing_routes(lane, observation.lanes[lane.lane])
            for lane in lanes
        }
        holders: dict[str, list[_Service]] = {}
        if any(wanted.values()):
            failure = await self._read_all(_listed(projects), observation, holders)
            if failure is not None:
                for lane_key, routes in wanted.items():
                    if routes:
                        observation.problems.append(ObservationProblem(lane_key, failure))
                return
        for lane in lanes:
            seen = observation.lanes[lane.lane]
            own = _own_ids(seen)
            for route in sorted(wanted[lane.lane]):
                others = [s for s in holders.get(route, []) if s.id not in own]
                if others:
                    seen.route_holders[route] = [self._describe(s) for s in others]
                    seen.route_holder_ids[route] = [s.id for s in others]
            if lane.domains:
                observation.fingerprint(
                    lane.lane,
                    f"routes:{lane.lane}",
                    object_fingerprint(self._salt, {"holders": seen.route_holders}),
                )

    async def _read_all(
        self,
        services: list[_Service],
        observation: Observation,
        holders: dict[str, list[_Service]],
    ) -> str | None:
        """Fill `holders` (route -> who routes it); a failure message if a read failed."""
        known = {s.service.id: s.service.domains for s in observation.lanes.values() if s.service}
        failures: list[str] = []
        limiter = anyio.CapacityLimiter(READ_CONCURRENCY)

        async def read(service: _Service) -> None:
            async with limiter:
                try:
                    domains = await self._domains(service)
                except DokployError as exc:
                    failures.append(f"reading the domains of {service.type} {service.id}: {exc}")
                    return
            for host, path in domains:
                holders.setdefault(f"{host}{path}", []).append(service)

        async with anyio.create_task_group() as group:
            for service in services:
                if service.id in known:
                    for domain in known[service.id]:
                        holders.setdefault(domain.key, []).append(service)
                else:
                    group.start_soon(read, service)
        return failures[0] if failures else None

    async def _domains(self, service: _Service) -> list[tuple[str, str]]:
        found: list[Domain] = (
            await self._client.domain_by_application_id(service.id)
            if service.type == "application"
            else await self._client.domain_by_compose_id(service.id)
        )
        return [(d.host, d.path or "/") for d in found]

    def _describe(self, service: _Service) -> str:
        owner = self._ownership.owner_of(ObjectRef(DOKPLOY, service.type, service.id))
        whose = f"owned by lane {owner.lane}" if owner else "not owned by Setpoint"
        return f"{service.type} {service.name!r} ({service.id}, {whose})"
