"""The parameters of each product operation: one model per operation, built by the rules,
stored in the plan, read back typed by the executor (`ProductExecutor`).

A `Link` names a Dokploy object by the ref the plan orders on (`project:shop`) and its id
once known; an object this plan creates has no id until its action has run, and the rule
that links to it lists its ref in the action's `after` (`unknown_refs`).
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from desired_state.secrets import SecretRef
from reconciler.kinds.base import OpParams


class Link(OpParams):
    """A project or environment: its ref in the plan, its id once it exists."""

    ref: str
    id: str | None = None


class ServiceLink(Link):
    """The lane's service: application or compose (`services.ServiceType`)."""

    type: str


class OwnedService(OpParams):
    """A service that exists, by id (reclaimed or inherited, never created by this plan)."""

    type: str
    id: str


def unknown_refs(*links: Link | None) -> tuple[str, ...]:
    """The refs of `links` whose object does not exist yet: made by an earlier action."""
    return tuple(link.ref for link in links if link is not None and link.id is None)


class CreateProject(OpParams):
    name: str


class CreateEnvironment(OpParams):
    project: Link
    name: str


class CreateService(OpParams):
    """create_application and create_compose."""

    environment: Link
    name: str
    protected: bool = False
    server_id: str | None = None


class ReclaimService(OpParams):
    service: OwnedService
    name: str
    protected: bool = False


class OwnedEnvironment(OpParams):
    """An environment Setpoint created, by id and name (`ops.ENVIRONMENT`)."""

    id: str
    name: str


class TakeEnvironment(OpParams):
    environment: OwnedEnvironment
    from_lane: str  # the lane that created it, with no service left in it


class InheritService(OpParams):
    service: OwnedService
    from_lane: str  # the lane key the service belonged to
    protected: bool = False
    # Environments the previous lane created: they move with the service, to be deleted
    # with the lane that has them now.
    environments: list[OwnedEnvironment] = Field(default_factory=list)


class SetImage(OpParams):
    service: ServiceLink
    image: str


class SetReplicas(OpParams):
    service: ServiceLink
    replicas: int


class SetComposeFile(OpParams):
    service: ServiceLink
    compose_file: str


class SetEnv(OpParams):
    """Plain values and secret *references*: values are resolved at apply time, and must
    still match the fingerprints the plan was computed with."""

    service: ServiceLink
    plain: dict[str, str]
    secret_refs: dict[str, SecretRef]
    secret_fingerprints: dict[str, str]
    remove: list[str]  # keys Setpoint wrote before and the lane no longer declares


class UpsertDomain(OpParams):
    service: ServiceLink
    domain_id: str | None = None  # None: created
    host: str
    path: str
    port: int
    https: bool
    service_name: str | None = None  # the compose service routed to


class DeleteDomain(OpParams):
    domain_id: str


class ReleaseDomain(OpParams):
    domain_id: str


class HealthCheck(OpParams):
    url: str
    expect_status: int
    timeout_seconds: float
    # `expectIdentity`: the env values the answer must report back (`identity.py`); none
    # by default, so plans stored before it read the same.
    expect_identity: dict[str, str] = Field(default_factory=dict)


class AwaitedDeploy(OpParams):
    """A deploy of this configuration asked for earlier: one Dokploy shows (`deployment_id`)
    or one still queued, asked for `at` (epoch seconds) under `title`."""

    deployment_id: str | None = None
    title: str | None = None
    at: float | None = None
    # When a parked deploy's build was first seen (the runtime's clock): its timeout counts
    # from then across the looks, not from each look.
    building_since: float | None = None


class Deploy(OpParams):
    model_config = ConfigDict(populate_by_name=True)

    service: ServiceLink
    server_id: str | None = None
    config_hash: str
    source_sha: str | None = None
    timeout_seconds: float
    health_checks: list[HealthCheck]
    health_failures: int = 0
    # `await` in the stored plan (a Python keyword): awaited instead of asked for again.
    awaiting: AwaitedDeploy | None = Field(default=None, alias="await")
    deploy_failures: int = 0  # of this configuration so far: its backoff grows with them


class CheckHealth(OpParams):
    service: ServiceLink
    config_hash: str
    health_checks: list[HealthCheck]
    health_failures: int


class DeleteService(OpParams):
    service_type: str
    service_id: str


class DeleteEnvironment(OpParams):
    """An environment Setpoint created (owned as `environment`), by id."""

    environment_id: str
    name: str
