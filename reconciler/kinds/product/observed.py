"""What the observer saw of one product lane in Dokploy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.dokploy.models import Environment
from reconciler.core.inventory import Owned
from reconciler.kinds.product.ops import ENVIRONMENT
from reconciler.kinds.product.services import ServiceType


@dataclass(frozen=True)
class ObservedDomain:
    domain_id: str
    host: str
    path: str
    port: int | None
    https: bool
    service: str | None

    @property
    def key(self) -> str:
        return f"{self.host}{self.path}"


@dataclass(frozen=True)
class ObservedService:
    type: str  # application | compose
    id: str
    name: str
    environment_id: str | None
    image: str | None
    compose_file: str | None
    env_text: str = field(repr=False)
    replicas: int | None
    domains: tuple[ObservedDomain, ...]
    latest_deployment: str | None  # status of the newest deployment, None if never deployed
    server_id: str | None = None
    latest_deployment_id: str | None = None
    latest_deployment_title: str | None = None
    latest_deployment_at: str | None = None  # when Dokploy says it was created (ISO 8601)

    def fingerprint_fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "compose_file": self.compose_file,
            "env": self.env_text,
            "replicas": self.replicas,
            "domains": sorted(
                (d.domain_id, d.host, d.path, d.port, d.https, d.service) for d in self.domains
            ),
            # Deployment state too: a plan that would deploy is stale once anyone else has
            # deployed the service since (its status may move on; a new deployment may not).
            "latest_deployment_id": self.latest_deployment_id,
        }


@dataclass(frozen=True)
class ServiceFacts:
    """What the product kind remembers about a service it owns (ownership `facts`)."""

    # Env keys Setpoint wrote: removing one from desired state removes it here, and keys
    # someone else added by hand are left alone.
    managed_env_keys: tuple[str, ...] = ()
    # The subset Setpoint wrote from plain (non-secret) desired env: the only values read back
    # from Dokploy that a plan may show in clear. Everything else appears as a fingerprint.
    plain_env_keys: tuple[str, ...] = ()
    # Hash of the configuration the last verified deploy ran with: a save without a deploy
    # (a failed apply, say) leaves it behind, so the next plan knows a deploy is owed.
    deployed_config_hash: str | None = None
    # The commit that deployment was built from, when the lane knows one (previews).
    deployed_sha: str | None = None
    # The health of that deployment, kept apart from it: {"config_hash", "ok", "failures",
    # "check", "reason"}. A failing check is checked again with backoff, never redeployed.
    health: Mapping[str, Any] | None = None
    # A deploy that ended error: {"config_hash", "deployment_id", "at", "failures",
    # "retry_at"} (times from the runtime's clock). DeployFailed: the same configuration is
    # deployed again only after `retry_at`; a new configuration at once.
    deploy_failed: Mapping[str, Any] | None = None
    # A deploy asked for whose build had not started when its worker stopped waiting:
    # {"config_hash", "at"}; or a parked one whose build was running at the last look, with
    # "deployment_id" and "building_since" too. Awaited by the next plan, not asked again.
    deploy_asked: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, owned: Owned | None) -> ServiceFacts:
        facts = owned.facts if owned else {}
        return cls(
            managed_env_keys=tuple(facts.get("managed_env_keys", ())),
            plain_env_keys=tuple(facts.get("plain_env_keys", ())),
            deployed_config_hash=facts.get("deployed_config_hash"),
            deployed_sha=facts.get("deployed_sha"),
            health=facts.get("health"),
            deploy_failed=facts.get("deploy_failed"),
            deploy_asked=facts.get("deploy_asked"),
        )


SERVICE_TYPES = frozenset(ServiceType)


def owned_service(owned: list[Owned]) -> Owned | None:
    services = [o for o in owned if o.object_type in SERVICE_TYPES]
    return services[0] if services else None


def owned_environments(owned: list[Owned]) -> list[Owned]:
    """Environments the lane's create made (`ops.ENVIRONMENT`), never ones it found."""
    return [o for o in owned if o.object_type == ENVIRONMENT]


def environment_holdings(environment: Environment) -> list[str]:
    """What the environment holds, of anyone's: its services by id, then a count of its
    databases (which Setpoint never makes, so never deletes)."""
    held = sorted(environment.service_ids)
    if environment.database_count:
        held.append(f"{environment.database_count} database(s)")
    return held


@dataclass(frozen=True)
class ObservedEnvironment:
    """An environment a removed lane owns, as the project listing shows it (`found`)."""

    owned: Owned
    found: bool = False
    name: str = ""
    project: str = ""
    is_default: bool = False
    service_ids: frozenset[str] = frozenset()  # its applications' and compose services'
    databases: int = 0  # of anyone's: Setpoint makes none, so they always keep it


@dataclass
class ObservedProductLane:
    project_id: str | None = None
    environment_id: str | None = None
    server_id: str | None = None  # of the Dokploy server the lane names, when it names one
    service: ObservedService | None = None
    owned: Owned | None = None
    # Unowned services with the lane's name: reported, never touched.
    clashes: list[str] = field(default_factory=list)
    # The registry says Setpoint owns a service that Dokploy confirmed (by id) is gone.
    vanished: Owned | None = None
    # An unowned service with the lane's name that an interrupted apply of this lane made.
    reclaimable: Reclaimable | None = None
    # Deploys interrupted applies of this lane asked for and nobody reported on since, oldest
    # first: {"config_hash", "at"} (`at` when its intent was recorded, in epoch seconds).
    interrupted_deploys: tuple[Mapping[str, Any], ...] = ()
    # The lane `owned` still belongs to: the lane this one was renamed from.
    inherited_from: str | None = None
    # The environments that lane created, which move with its service.
    inherited_environments: tuple[Owned, ...] = ()
    # The lane's environment, when another lane created it and has no service left in it:
    # this lane takes it over (`take_environment`).
    environment_left_by: Owned | None = None
    # Routes the lane would add that other services already have: route -> who has it.
    route_holders: dict[str, list[str]] = field(default_factory=dict)
    # The same holders by service id, in the same order: a plan that deletes one sees it.
    route_holder_ids: dict[str, list[str]] = field(default_factory=dict)
    # Environments a removed lane owns: deleted once nothing is left in them.
    environments: tuple[ObservedEnvironment, ...] = ()


@dataclass(frozen=True)
class Reclaimable:
    type: str
    id: str
    name: str
    because: str  # which unfinished create made it, for the plan's reason


def project_ref(project: str) -> str:
    return f"dokploy:project/{project}"


def environment_ref(project: str, environment: str) -> str:
    return f"dokploy:environment/{project}/{environment}"


def service_ref(project: str, environment: str, service: str) -> str:
    return f"dokploy:service/{project}/{environment}/{service}"
