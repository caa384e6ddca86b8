"""Execute product-lane actions against Dokploy. Side effects live here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from desired_state.dotenv import carry_problem
from desired_state.secret_sources import SecretSources
from providers.dokploy.client import DokployClient
from providers.dokploy.ensure import ProjectIndex
from providers.dokploy.envfile import merge as merge_env
from providers.dokploy.errors import (
    DokployAccessDenied,
    DokployAnswerLost,
    DokployError,
    DokployNotFound,
    DokployTimeout,
)
from reconciler.core.outcomes import Claim, Done, Facts, ObjectRef, Retry
from reconciler.core.plans import Action
from reconciler.errors import ActionAccessDenied, ActionFailed, SecretUnavailable
from reconciler.kinds.product import params
from reconciler.kinds.product.deploying import BuildTurn, Deployer
from reconciler.kinds.product.health import HealthProbe
from reconciler.kinds.product.observed import environment_holdings
from reconciler.kinds.product.ops import DOKPLOY, ENVIRONMENT, Op
from reconciler.kinds.product.rule_input import (
    environment_key,
    project_key,
    uncarried_secret,
)
from reconciler.kinds.product.services import BY_CREATE_OP, strategy_for
from reconciler.secret_sources import default_sources
from reconciler.secret_values import StoreReader, fingerprint, resolve

log = logging.getLogger("setpoint.apply")


@dataclass
class ProductExecutor:
    """Runs one apply's product actions; several may run at once on one event loop, so
    what they share (`resolved`, the project index) is written without awaiting between
    read and write, or under the index's locks."""

    client: DokployClient
    salt: str
    health_check: HealthProbe
    environ: Mapping[str, str] | None = None
    store: StoreReader | None = None
    sources: SecretSources = field(default_factory=default_sources)
    poll_interval: float = 1.0
    health_backoff: float = 30.0  # seconds before a failed health check is run again
    deploy_backoff: float = 60.0  # seconds before a failed deploy's configuration is retried
    clock: Callable[[], float] = field(kw_only=True)  # the runtime's clock: no default
    # The loop comes back to a parked lane (`Runtime.parks_long_waits`): a deploy is asked for
    # and looked at for `look_seconds`, then its lane is parked (a `Retry`) until the next
    # look, never a worker held for the build. Without a loop (the CLI's apply) it waits.
    parks_builds: bool = False
    look_seconds: float = 2.0
    # Record the environments it creates (owned, so deleted with the last lane in them).
    owns_created_environments: bool = True
    resolved: dict[str, str] = field(default_factory=dict)  # logical ref -> provider id
    # Environments a create of this apply found already in Dokploy instead of making: the
    # plan did not see them (a listing that answered short), so it never read their services.
    unplanned_environments: set[str] = field(default_factory=set)
    # One executor runs one apply: its creates share one project listing, not one each.
    projects: ProjectIndex = field(init=False)
    # Build slots held by deploys the engine admitted, by action id, until their build ends.
    _turns: dict[str, BuildTurn] = field(default_factory=dict)

    # Deploys and health checks, on the same client, clock and settings.
    deployer: Deployer = field(init=False)

    def __post_init__(self) -> None:
        self.projects = ProjectIndex(self.client)
        self.deployer = Deployer(
            self.client,
            self.health_check,
            clock=self.clock,
            poll_interval=self.poll_interval,
            health_backoff=self.health_backoff,
            deploy_backoff=self.deploy_backoff,
            parks_builds=self.parks_builds,
            look_seconds=self.look_seconds,
        )

    def admission(self, action: Action) -> BuildTurn | None:
        """A deploy waits for one of its Dokploy server's build slots before its intent is
        recorded: an interrupted deploy's intent then means it was asked for (or about to
        be), never that it still waited for a slot here (see `deploy_rules`)."""
        if action.op != Op.deploy:
            return None
        turn = BuildTurn(self.client.build_slots(params.Deploy.of(action).server_id))
        self._turns[action.id] = turn
        return turn

    async def execute(self, action: Action) -> Done | Retry:
        handler = _HANDLERS[Op(action.op)]
        try:
            return await handler(self, action)
        except DokployAccessDenied as exc:  # the key works, but not on this service
            said = f"access_denied: Dokploy refused the API key this call ({exc})"
            raise ActionAccessDenied(said) from exc
        except DokployError as exc:  # typed, and free of secrets by construction
            raise ActionFailed(f"{type(exc).__name__}: {exc}") from exc

    def _id(self, action: Action, link: params.Link) -> str:
        """The linked object's id: planned, reported to this apply by an earlier action of
        any kind (`Action.known`), or made by this executor."""
        found = link.id or action.known_id(link.ref) or self.resolved.get(link.ref)
        if not found:
            raise ActionFailed(f"{link.ref} was not created by an earlier action")
        return found

    def _service(self, action: Action, service: params.ServiceLink) -> tuple[str, str]:
        return service.type, self._id(action, service)

    # -- creates ---------------------------------------------------------------------------

    async def _create_project(self, action: Action) -> Done:
        name = params.CreateProject.of(action).name
        project, created = await self.projects.ensure_project(
            name, description="managed by Setpoint"
        )
        provided = {project_key(name): project.project_id}
        for environment in project.environments:
            provided[environment_key(name, environment.name)] = environment.environment_id
        self.resolved.update(provided)
        if not created:
            self.unplanned_environments.update(e.environment_id for e in project.environments)
        verb = "created" if created else "found existing"
        return Done(f"{verb} project {name} ({project.project_id})", provided=provided)

    async def _create_environment(self, action: Action) -> Done:
        p = params.CreateEnvironment.of(action)
        project_id = self._id(action, p.project)
        name = p.name
        environment, created = await self.projects.ensure_environment(project_id, name)
        environment_id = environment.environment_id
        if not created:
            self.unplanned_environments.add(environment_id)
        provided = dict.fromkeys(action.provides, environment_id)
        self.resolved.update(provided)
        said = f"{'created' if created else 'found existing'} environment {name} ({environment_id})"
        if not created or not self.owns_created_environments:  # never deleted by Setpoint
            return Done(said, provided=provided)
        ref = ObjectRef(DOKPLOY, ENVIRONMENT, environment_id)
        claim = Claim(ref=ref, name=name, facts={"project_id": project_id})
        return Done(said, provided=provided, claims=(claim,))

    async def _take_environment(self, action: Action) -> Done:
        p = params.TakeEnvironment.of(action)
        environment = p.environment
        claim = Claim(ref=ObjectRef(DOKPLOY, ENVIRONMENT, environment.id), name=environment.name)
        return Done(
            f"took over environment {environment.name} ({environment.id}) from {p.from_lane}",
            claims=(claim,),
        )

    async def _create_service(self, action: Action) -> Done:
        p = params.CreateService.of(action)
        environment_id = self._id(action, p.environment)
        name = p.name
        service = BY_CREATE_OP[action.op]
        service_type = service.type.value
        # The plan proposed this create because it saw no service of this name, and the apply
        # re-read that just before running: no need to read the environment again first,
        # unless the environment is one the plan never saw (found here, not made).
        known_absent = environment_id not in self.unplanned_environments
        service_id, created = await service.ensure(
            self.client, environment_id, name, p.server_id, known_absent=known_absent
        )
        if not created:
            # Found before any create of ours: someone made it after planning, or it sat in
            # an environment the plan did not see. It is not ours: adoption is the operator's.
            raise ActionFailed(
                f"an unowned {service_type} named {name!r} is already there; left untouched"
            )
        for ref in action.provides:
            self.resolved[ref] = service_id
        claim = Claim(
            ref=ObjectRef(DOKPLOY, service_type, service_id), name=name, protected=p.protected
        )
        return Done(
            f"created {service_type} {name} ({service_id})", {"id": service_id}, claims=(claim,)
        )

    async def _reclaim_service(self, action: Action) -> Done:
        p = params.ReclaimService.of(action)
        service_type, service_id = p.service.type, p.service.id
        found = await strategy_for(service_type).read(self.client, service_id)  # still there?
        if found.name != p.name:
            raise ActionFailed(
                f"{service_type} {service_id} is now named {found.name!r}; not reclaimed"
            )
        for ref in action.provides:
            self.resolved[ref] = service_id
        claim = Claim(
            ref=ObjectRef(DOKPLOY, service_type, service_id), name=found.name, protected=p.protected
        )
        return Done(f"reclaimed {service_type} {found.name} ({service_id})", claims=(claim,))

    async def _inherit_service(self, action: Action) -> Done:
        p = params.InheritService.of(action)
        service_type, service_id = p.service.type, p.service.id
        found = await strategy_for(service_type).read(self.client, service_id)  # still there?
        for ref in action.provides:
            self.resolved[ref] = service_id
        claim = Claim(
            ref=ObjectRef(DOKPLOY, service_type, service_id), name=found.name, protected=p.protected
        )
        environments = tuple(
            Claim(ref=ObjectRef(DOKPLOY, ENVIRONMENT, e.id), name=e.name) for e in p.environments
        )
        source = p.from_lane
        return Done(
            f"took over {service_type} {found.name} ({service_id}) from {source}",
            claims=(claim, *environments),
        )

    # -- configuration ---------------------------------------------------------------------

    async def _set_image(self, action: Action) -> Done:
        p = params.SetImage.of(action)
        _, service_id = self._service(action, p.service)
        await self.client.application_save_docker_provider(service_id, docker_image=p.image)
        return Done(f"image set to {p.image}")

    async def _set_replicas(self, action: Action) -> Done:
        p = params.SetReplicas.of(action)
        _, service_id = self._service(action, p.service)
        await self.client.application_update(service_id, replicas=p.replicas)
        return Done(f"replicas set to {p.replicas}")

    async def _set_compose_file(self, action: Action) -> Done:
        p = params.SetComposeFile.of(action)
        _, service_id = self._service(action, p.service)
        await self.client.compose_update(service_id, compose_file=p.compose_file, source_type="raw")
        return Done("compose file updated")

    async def _set_env(self, action: Action) -> Done:
        p = params.SetEnv.of(action)
        service_type, service_id = self._service(action, p.service)
        owned: dict[str, str] = dict(p.plain)
        for key, ref in p.secret_refs.items():
            try:
                value = resolve(
                    ref,
                    sources=self.sources,
                    environ=self.environ,
                    store=self.store,
                )
            except SecretUnavailable as exc:
                raise ActionFailed(f"{key}: {exc}") from None
            if fingerprint(self.salt, value) != p.secret_fingerprints.get(key):
                raise ActionFailed(f"secret {key} changed since the plan was computed; plan again")
            uncarried = carry_problem(value.reveal())
            if uncarried is not None:  # planned before a check that refuses it now
                raise ActionFailed(uncarried_secret(key, uncarried))
            owned[key] = value.reveal()
        service = strategy_for(service_type)
        # Read now, although the plan saw the env: keys Setpoint does not manage must survive
        # the save, and the plan holds only fingerprints of values, never the values.
        current = await service.read(self.client, service_id)
        text = merge_env(current.env, owned, p.remove)
        await service.save_env(self.client, current, text)
        facts = Facts(
            ObjectRef(DOKPLOY, service_type, service_id),
            {"managed_env_keys": sorted(owned), "plain_env_keys": sorted(p.plain)},
        )
        return Done(f"env saved ({len(owned)} managed key(s); values not shown)", facts=(facts,))

    async def _upsert_domain(self, action: Action) -> Done:
        p = params.UpsertDomain.of(action)
        service_type, service_id = self._service(action, p.service)
        common: dict[str, Any] = {
            "path": p.path,
            "port": p.port,
            "https": p.https,
            "certificate_type": "letsencrypt" if p.https else "none",
        }
        if p.domain_id:
            await self.client.domain_update(
                p.domain_id, host=p.host, service_name=p.service_name, **common
            )
            return Done(f"domain {p.host}{p.path} updated")
        target = strategy_for(service_type).domain_target(service_id, p.service_name)
        domain = await self.client.domain_create(p.host, **target, **common)
        return Done(f"domain {p.host}{p.path} created ({domain.domain_id})")

    async def _delete_domain(self, action: Action) -> Done:
        domain_id = params.DeleteDomain.of(action).domain_id
        await self.client.domain_delete(domain_id)
        return Done(f"domain {domain_id} deleted")

    async def _release_domain(self, action: Action) -> Done:
        """Free a route on a service this plan deletes, for the lane that takes it over."""
        domain_id = params.ReleaseDomain.of(action).domain_id
        await self.client.domain_delete(domain_id)
        provided = dict.fromkeys(action.provides, domain_id)
        return Done(f"domain {domain_id} released", provided=provided)

    # -- deploy and delete -----------------------------------------------------------------

    async def _deploy(self, action: Action) -> Done | Retry:
        p = params.Deploy.of(action)
        turn = self._turns.pop(action.id, None) or BuildTurn(self.client.build_slots(p.server_id))
        service_type, service_id = self._service(action, p.service)
        return await self.deployer.deploy(
            action, p, ObjectRef(DOKPLOY, service_type, service_id), turn
        )

    async def _check_health(self, action: Action) -> Done | Retry:
        p = params.CheckHealth.of(action)
        service_type, service_id = self._service(action, p.service)
        return await self.deployer.health(p, ObjectRef(DOKPLOY, service_type, service_id), {}, {})

    async def _delete_service(self, action: Action) -> Done:
        p = params.DeleteService.of(action)
        service_type, service_id = p.service_type, p.service_id
        service = strategy_for(service_type)
        try:
            await service.delete(self.client, service_id)
        except (DokployTimeout, DokployAnswerLost):
            # The answer was lost, not necessarily the delete: read it by id. Only Dokploy's
            # "not found" counts as gone; anything else leaves the failure standing.
            try:
                await service.read(self.client, service_id)
            except DokployNotFound:
                pass
            else:
                raise
        return Done(
            f"{service_type} {service_id} deleted",
            releases=(ObjectRef(DOKPLOY, service_type, service_id),),
        )

    async def _delete_environment(self, action: Action) -> Done:
        """Read it again first: Dokploy removes an environment with whatever it holds, and
        the plan may be old. Only its own "not found" counts as already gone."""
        p = params.DeleteEnvironment.of(action)
        ref = ObjectRef(DOKPLOY, ENVIRONMENT, p.environment_id)
        try:
            environment = await self.client.environment_one(p.environment_id)
        except DokployNotFound:
            return Done(f"environment {p.name} ({p.environment_id}) was gone", releases=(ref,))
        held = environment_holdings(environment)
        if held:
            raise ActionFailed(
                f"environment {p.name} ({p.environment_id}) now holds {', '.join(held)}; "
                "left in place"
            )
        await self.client.environment_remove(p.environment_id)
        return Done(f"environment {p.name} ({p.environment_id}) deleted", releases=(ref,))


_HANDLERS: dict[Op, Callable[[ProductExecutor, Action], Awaitable[Done | Retry]]] = {
    Op.create_project: ProductExecutor._create_project,
    Op.create_environment: ProductExecutor._create_environment,
    Op.take_environment: ProductExecutor._take_environment,
    Op.create_application: ProductExecutor._create_service,
    Op.create_compose: ProductExecutor._create_service,
    Op.reclaim_service: ProductExecutor._reclaim_service,
    Op.inherit_service: ProductExecutor._inherit_service,
    Op.set_image: ProductExecutor._set_image,
    Op.set_replicas: ProductExecutor._set_replicas,
    Op.set_compose_file: ProductExecutor._set_compose_file,
    Op.set_env: ProductExecutor._set_env,
    Op.upsert_domain: ProductExecutor._upsert_domain,
    Op.delete_domain: ProductExecutor._delete_domain,
    Op.release_domain: ProductExecutor._release_domain,
    Op.deploy: ProductExecutor._deploy,
    Op.check_health: ProductExecutor._check_health,
    Op.delete_service: ProductExecutor._delete_service,
    Op.delete_environment: ProductExecutor._delete_environment,
}
