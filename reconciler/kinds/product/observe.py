"""Observe product lanes in Dokploy: one `project.all`, then bounded detail reads.

Fail closed (Invariant 3): a failed read, or an empty listing while the registry says
Setpoint owns objects, marks the observation incomplete; it is never read as "nothing
exists".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import anyio

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployAccessDenied, DokployError, DokployNotFound
from providers.dokploy.models import Application, Compose, Environment, Project
from reconciler.core import shared_reads
from reconciler.core.inventory import Owned, OwnershipSnapshot
from reconciler.core.outcomes import ObjectRef
from reconciler.core.plans import ABSENT, object_fingerprint
from reconciler.kinds.base import Observation, ObservationProblem
from reconciler.kinds.product.lanes import KIND, ProductLane
from reconciler.kinds.product.observed import (
    ObservedDomain,
    ObservedEnvironment,
    ObservedProductLane,
    ObservedService,
    Reclaimable,
    environment_ref,
    owned_environments,
    owned_service,
    project_ref,
    service_ref,
)
from reconciler.kinds.product.ops import DOKPLOY, ENVIRONMENT, Op
from reconciler.kinds.product.routes import RouteReader
from reconciler.kinds.product.services import identify, strategy_for

log = logging.getLogger("setpoint.observe")
DETAIL_READ_CONCURRENCY = 8
# Dokploy's clock and ours may differ a little; a service stamped this much before the create
# was announced still counts as made by it (a rival made earlier would have been seen by the
# plan's observation, which the apply re-read just before announcing the create).
CLOCK_SKEW = timedelta(seconds=60)
_Detail = tuple[str, str, str]  # (lane, service type, service id) to read in detail


def service_from(detail: Application | Compose) -> ObservedService:
    deployments = detail.deployments
    latest = max(deployments, key=lambda d: d.created_at or "", default=None)
    if isinstance(detail, Application):
        return ObservedService(
            type="application",
            id=detail.application_id,
            name=detail.name,
            environment_id=detail.environment_id,
            image=detail.docker_image,
            compose_file=None,
            env_text=detail.env or "",
            replicas=detail.replicas,
            domains=tuple(_domains(detail)),
            latest_deployment=latest.status if latest else None,
            latest_deployment_id=latest.deployment_id if latest else None,
            latest_deployment_title=latest.title if latest else None,
            latest_deployment_at=latest.created_at if latest else None,
            server_id=detail.server_id,
        )
    return ObservedService(
        type="compose",
        id=detail.compose_id,
        name=detail.name,
        environment_id=detail.environment_id,
        image=None,
        compose_file=detail.compose_file,
        env_text=detail.env or "",
        replicas=None,
        domains=tuple(_domains(detail)),
        latest_deployment=latest.status if latest else None,
        latest_deployment_id=latest.deployment_id if latest else None,
        latest_deployment_title=latest.title if latest else None,
        latest_deployment_at=latest.created_at if latest else None,
        server_id=detail.server_id,
    )


def read_problem(lane: str, what: str, exc: DokployError) -> ObservationProblem:
    """A read of the lane's object failed. Refused to the key (a per-service 401) it is the
    lane's `access_denied`, with Dokploy's own words; anything else leaves it unobserved."""
    if isinstance(exc, DokployAccessDenied):
        said = f"{what}: Dokploy refused the API key access to it ({exc.message})"
        return ObservationProblem(lane, said, access_denied=True)
    return ObservationProblem(lane, f"{what}: {exc}")


def _domains(detail: Application | Compose) -> list[ObservedDomain]:
    return [
        ObservedDomain(
            domain_id=d.domain_id,
            host=d.host,
            path=d.path or "/",
            port=d.port,
            https=d.https,
            service=d.service_name,
        )
        for d in detail.domains
    ]


def interrupted_deploys(ownership: OwnershipSnapshot, lane: str) -> tuple[dict[str, Any], ...]:
    """The configurations interrupted applies asked the lane's service to deploy, and when:
    each such deploy may still wait in Dokploy's build queue, where nothing shows it."""
    found = []
    for run in ownership.unfinished_runs_for(lane, Op.deploy):
        config = next((c for c in run.changes if c.get("field") == "configuration"), None)
        if config is not None and config.get("after"):
            found.append({"config_hash": str(config["after"]), "at": run.at.timestamp()})
    return tuple(found)


async def read_service(
    client: DokployClient, service_type: str, service_id: str
) -> Application | Compose:
    return await strategy_for(service_type).read(client, service_id)


class ProductObserver:
    def __init__(
        self,
        client: DokployClient,
        ownership: OwnershipSnapshot,
        salt: str,
        kind: str = KIND,
        leaving: frozenset[str] = frozenset(),
    ) -> None:
        self._client = client
        self._ownership = ownership
        self._salt = salt
        self._kind = kind  # whose owned objects make an empty listing suspicious
        # Lanes of this kind no longer desired: their services go with this plan.
        self._leaving = leaving

    async def observe(
        self, lanes: Sequence[ProductLane], removed: Sequence[str] = ()
    ) -> Observation:
        """`removed`: lanes the registry owns objects for but desired state no longer has."""
        observation = Observation()
        projects = await self._projects(observation)
        if projects is None:
            return observation
        servers = await self._servers(lanes, observation)
        by_name: dict[str, list[Project]] = {}  # looked up once per lane: by key, not by scan
        for project in projects:
            by_name.setdefault(project.name, []).append(project)
        details = [
            *(self._desired_lane(lane, by_name, servers, observation) for lane in lanes),
            *(self._removed_lane(name, projects, observation) for name in removed),
        ]
        await self._read_details([d for d in details if d is not None], observation)
        await self._confirm_reclaims(observation)
        await RouteReader(self._client, self._ownership, self._salt).observe(
            lanes, projects, observation
        )
        for lane in lanes:
            self._fingerprint(lane, observation)
        for lane_name in removed:
            self._fingerprint_removed(lane_name, observation)
        return observation

    async def _projects(self, observation: Observation) -> list[Project] | None:
        """Every project, or None (with the problem noted) when the listing cannot be trusted."""
        try:
            # One listing serves every batch of a loop pass (core/shared_reads.py).
            projects = await shared_reads.once(
                ("project.all", self._client), self._client.project_all
            )
        except DokployError as exc:
            observation.problems.append(
                ObservationProblem(None, f"Dokploy project.all failed: {exc}")
            )
            return None
        owned_count = self._ownership.count(self._kind)
        if not projects and owned_count:
            observation.problems.append(
                ObservationProblem(
                    None,
                    f"Dokploy listed no projects, but Setpoint owns {owned_count} object(s) "
                    "there; refusing to read that as 'nothing exists'. If Dokploy really lost "
                    "them, `setpoint forget LANE` drops a lane's records once its objects are "
                    "confirmed gone (docs/operations.md, 'Dokploy lost objects')",
                )
            )
            return None
        return projects

    def _desired_lane(
        self,
        lane: ProductLane,
        projects: dict[str, list[Project]],
        servers: dict[str, str],
        observation: Observation,
    ) -> _Detail | None:
        seen = self._locate(lane, projects, observation)
        seen.interrupted_deploys = interrupted_deploys(self._ownership, lane.lane)
        observation.lanes[lane.lane] = seen
        if lane.server is not None:
            seen.server_id = servers.get(lane.server)
            if seen.server_id is None and lane.lane not in _failed(observation):
                observation.problems.append(
                    ObservationProblem(lane.lane, f"Dokploy has no server named {lane.server!r}")
                )
        if seen.owned is not None and seen.service is None and seen.vanished is None:
            return (lane.lane, seen.owned.object_type, seen.owned.object_id)
        return None

    def _removed_lane(
        self, lane_name: str, projects: list[Project], observation: Observation
    ) -> _Detail | None:
        mine = self._ownership.for_lane(lane_name)
        owned = owned_service(mine)
        environments = tuple(_seen_environment(e, projects) for e in owned_environments(mine))
        observation.lanes[lane_name] = ObservedProductLane(owned=owned, environments=environments)
        return (lane_name, owned.object_type, owned.object_id) if owned is not None else None

    async def _read_details(self, details: list[_Detail], observation: Observation) -> None:
        """Read owned services by id, a bounded number at a time: a NotFound there, and only
        that, means the service is gone."""
        limiter = anyio.CapacityLimiter(DETAIL_READ_CONCURRENCY)

        async def read(lane_name: str, service_type: str, service_id: str) -> None:
            async with limiter:
                seen = observation.lanes[lane_name]
                try:
                    detail = await read_service(self._client, service_type, service_id)
                except DokployNotFound:
                    seen.vanished = seen.owned
                    seen.owned = None
                    return
                except DokployError as exc:
                    observation.problems.append(
                        read_problem(lane_name, f"reading {service_type} {service_id} failed", exc)
                    )
                    return
                seen.service = service_from(detail)

        async with anyio.create_task_group() as group:
            for lane_name, service_type, service_id in details:
                group.start_soon(read, lane_name, service_type, service_id)

    def _fingerprint_removed(self, lane_name: str, observation: Observation) -> None:
        seen = observation.lanes[lane_name]
        if seen.service is not None:
            ref = f"dokploy:{seen.service.type}/{seen.service.id}"
            value = object_fingerprint(self._salt, seen.service.fingerprint_fields())
            observation.fingerprint(lane_name, ref, value)
        for environment in seen.environments:  # a plan that deletes one sees it unchanged
            held = {
                "found": environment.found,
                "services": sorted(environment.service_ids),
                "databases": environment.databases,
            }
            observation.fingerprint(
                lane_name,
                f"dokploy:environment/{environment.owned.object_id}",
                object_fingerprint(self._salt, held),
            )

    async def _servers(
        self, lanes: Sequence[ProductLane], observation: Observation
    ) -> dict[str, str]:
        """Server name -> id, read only when a lane names a server."""
        if not any(lane.server for lane in lanes):
            return {}
        try:
            return {s.name: s.server_id for s in await self._client.server_all()}
        except DokployError as exc:
            for lane in lanes:
                if lane.server:
                    observation.problems.append(
                        ObservationProblem(lane.lane, f"Dokploy server.all failed: {exc}")
                    )
            return {}

    def _locate(
        self, lane: ProductLane, projects: dict[str, list[Project]], observation: Observation
    ) -> ObservedProductLane:
        seen = self._owned_or_inherited(lane)
        projects_named = projects.get(lane.project, [])
        if len(projects_named) > 1:
            observation.problems.append(
                ObservationProblem(
                    lane.lane, f"{len(projects_named)} projects named {lane.project!r}"
                )
            )
        project = projects_named[0] if projects_named else None
        if project is not None:
            seen.project_id = project.project_id
            environment = next(
                (e for e in project.environments if e.name == lane.environment), None
            )
            if environment is not None:
                seen.environment_id = environment.environment_id
                seen.environment_left_by = self._left_by(lane, environment)
                services: list[Application | Compose] = [
                    *environment.applications,
                    *environment.compose,
                ]
                for service in services:
                    if service.name != lane.service_name:
                        continue
                    strategy, service_id = identify(service)
                    service_type = strategy.type.value
                    owner = self._ownership.owner_of(ObjectRef(DOKPLOY, service_type, service_id))
                    if owner is not None and owner.lane in (lane.lane, seen.inherited_from):
                        continue  # read in detail below, by id
                    target = f"dokploy:{service_type}/{service.name}"
                    unfinished = self._ownership.unfinished_for(lane.lane, target)
                    if owner is None and unfinished and seen.reclaimable is None:
                        # Confirmed (or turned into a clash) once its detail is read.
                        seen.reclaimable = Reclaimable(service_type, service_id, service.name, "")
                        continue
                    seen.clashes.append(f"{service_type} {service_id} ({service.name})")
        # An owned service is read by id below, wherever it is listed: a NotFound there, and
        # only that, means it is gone.
        return seen

    def _left_by(self, lane: ProductLane, environment: Environment) -> Owned | None:
        """The ownership row of `environment` when another lane created it and is leaving
        (no longer desired), or has none of its services in it any more. Only product
        lanes take environments over: a preview's outlives it."""
        ref = ObjectRef(DOKPLOY, ENVIRONMENT, environment.environment_id)
        creator = self._ownership.owner_of(ref)
        if self._kind != KIND or creator is None:
            return None
        if creator.lane in (lane.lane, lane.previous_lane):
            return None
        if creator.lane in self._leaving:
            return creator
        theirs = {o.object_id for o in self._ownership.for_lane(creator.lane)}
        return None if environment.service_ids & theirs else creator

    def _owned_or_inherited(self, lane: ProductLane) -> ObservedProductLane:
        """The lane's own service; failing that, the service of the lane it was renamed
        from (read by id like its own, and taken over by the plan)."""
        own = owned_service(self._ownership.for_lane(lane.lane))
        if own is not None or lane.previous_lane is None:
            return ObservedProductLane(owned=own)
        previous_owned = self._ownership.for_lane(lane.previous_lane)
        previous = owned_service(previous_owned)
        if previous is None:
            return ObservedProductLane()
        return ObservedProductLane(
            owned=previous,
            inherited_from=lane.previous_lane,
            inherited_environments=tuple(owned_environments(previous_owned)),
        )

    async def _confirm_reclaims(self, observation: Observation) -> None:
        """A service an interrupted create may have made is reclaimable only if it was made
        after that create was announced (the listing does not say when: read it)."""
        for lane_name, seen in observation.lanes.items():
            candidate = seen.reclaimable
            if candidate is None:
                continue
            try:
                detail = await read_service(self._client, candidate.type, candidate.id)
            except DokployError as exc:
                observation.problems.append(
                    read_problem(lane_name, f"reading {candidate.type} {candidate.id}", exc)
                )
                continue
            because = self._made_by(lane_name, candidate, detail.created_at)
            seen.reclaimable = replace(candidate, because=because) if because else None
            if because is None:
                seen.clashes.append(f"{candidate.type} {candidate.id} ({candidate.name})")

    def _made_by(
        self, lane_name: str, candidate: Reclaimable, created_at: str | None
    ) -> str | None:
        """Which unfinished create of the lane made the service, if one can have."""
        if not created_at:
            return None
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        target = f"dokploy:{candidate.type}/{candidate.name}"
        for intent in self._ownership.unfinished_for(lane_name, target):
            if created >= intent.at - CLOCK_SKEW:
                return f"{intent.action_id} of interrupted plan {intent.plan_id}"
        return None

    def _fingerprint(self, lane: ProductLane, observation: Observation) -> None:
        seen: ObservedProductLane = observation.lanes[lane.lane]
        observation.fingerprint(
            lane.lane,
            project_ref(lane.project),
            object_fingerprint(self._salt, {"id": seen.project_id}) if seen.project_id else ABSENT,
        )
        observation.fingerprint(
            lane.lane,
            environment_ref(lane.project, lane.environment),
            object_fingerprint(self._salt, {"id": seen.environment_id})
            if seen.environment_id
            else ABSENT,
        )
        ref = service_ref(lane.project, lane.environment, lane.service_name)
        observation.fingerprint(lane.lane, ref, self._service_fingerprint(seen))

    def _service_fingerprint(self, seen: ObservedProductLane) -> str:
        if seen.service is not None:
            return object_fingerprint(self._salt, seen.service.fingerprint_fields())
        if seen.clashes:
            return object_fingerprint(self._salt, {"clashes": sorted(seen.clashes)})
        if seen.reclaimable is not None:
            return object_fingerprint(self._salt, {"reclaim": seen.reclaimable.id})
        return ABSENT


def _seen_environment(owned: Owned, projects: list[Project]) -> ObservedEnvironment:
    """The owned environment as the listing shows it; not `found` when it lists none."""
    for project in projects:
        for environment in project.environments:
            if environment.environment_id == owned.object_id:
                return ObservedEnvironment(
                    owned=owned,
                    found=True,
                    name=environment.name,
                    project=project.name,
                    is_default=environment.is_default,
                    service_ids=environment.service_ids,
                    databases=environment.database_count,
                )
    return ObservedEnvironment(owned=owned)


def _failed(observation: Observation) -> set[str | None]:
    return {p.lane for p in observation.problems}
