"""`Product`: a repository shipped to Dokploy through named lanes, plus its preview policy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from desired_state.base import SpecModel
from desired_state.names import Hostname, ImageRef, LaneNameRef, Name, Repository, UrlText
from desired_state.rules import lane_rules, preview_rules, product_rules, raise_rules
from desired_state.secrets import SecretRef, check_plain_env
from desired_state.templates import (
    DOMAIN_PLACEHOLDERS,
    IMAGE_PLACEHOLDERS,
    SLUG_PLACEHOLDERS,
    check_template,
)

PlainEnv = Annotated[dict[str, str], AfterValidator(check_plain_env)]
ApplyPolicy = Literal["manual", "auto-safe"]
PROD_LANE_NAMES = frozenset({"prod", "production"})


class DokployTarget(SpecModel):
    project: Name
    environment: Name = "production"
    server: str | None = Field(default=None, description="Dokploy server name; local if unset")


class ProductRuntime(SpecModel):
    port: int = Field(ge=1, le=65535)
    health_path: UrlText = Field(default="/healthz", pattern=r"^/")


class DomainSpec(SpecModel):
    host: Hostname
    path: UrlText = Field(default="/", pattern=r"^/")
    https: bool = True
    port: int | None = Field(default=None, ge=1, le=65535, description="defaults to runtime port")
    service: str | None = Field(default=None, description="compose service the domain routes to")


class HealthCheckSpec(SpecModel):
    url: UrlText | None = Field(default=None, description="full URL; default: first domain + path")
    path: UrlText | None = Field(
        default=None, pattern=r"^/", description="default: the product's runtime.healthPath"
    )
    expect_status: int = Field(default=200, ge=100, le=599)
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    expect_identity: bool = Field(
        default=False,
        description="the answer must report the lane's runtime identity back (headers "
        "`X-Setpoint-Generation` and `X-Setpoint-Image-Digest`, or a JSON body with "
        "`SETPOINT_GENERATION` and `SETPOINT_IMAGE_DIGEST`) equal to what Setpoint injected: "
        "the lane runs what was planned, not just something that answers; needs the lane's "
        "`runtimeIdentity: true`",
    )


class LaneSpec(SpecModel):
    name: Name
    target: Literal["application", "compose"] = "application"
    tier: Literal["testing", "prod"] | None = Field(
        default=None, description="prod lanes need an image digest; default from the lane name"
    )
    environment: Name | None = Field(default=None, description="Dokploy environment override")
    image: ImageRef | None = None
    compose_file: str | None = Field(default=None, description="docker-compose YAML, inline")
    env: PlainEnv = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    domains: list[DomainSpec] = Field(default_factory=list)
    replicas: int = Field(default=1, ge=0, le=100)
    health_checks: list[HealthCheckSpec] = Field(default_factory=list)
    deploy_timeout_seconds: float = Field(default=600, gt=0, le=7200)
    health_interval_seconds: float | None = Field(
        default=None,
        ge=10,
        le=86400,
        description="how often a scheduled pass checks the health of the converged lane "
        "again (one request per check); default: the `health_watch_interval_seconds` setting",
    )
    apply: ApplyPolicy = "manual"
    protect: bool = False
    require_reason: bool = Field(
        default=False,
        description="an operator's or workflow's apply must say why (`setpoint apply "
        "--reason`, the review page, the API's `reason`)",
    )
    renamed_from: LaneNameRef | None = Field(
        default=None,
        description="the lane's previous name (`testing`, or `old-product/testing`): it takes "
        "over that lane's Dokploy service instead of a delete and a create",
    )
    runtime_identity: bool = Field(
        default=False,
        description="inject `SETPOINT_GENERATION` (the lane's deploy generation: a "
        "fingerprint of what its service is built from, so a policy-only change does not "
        "redeploy) and, for an image pinned by digest, `SETPOINT_IMAGE_DIGEST` into the "
        "service's env; a health check with `expectIdentity` then verifies them",
    )
    on_failed_health: Literal["none", "rollback"] = Field(
        default="none",
        description="rollback: after a deploy whose health check failed, a scheduled pass "
        "writes the lane's last known-good state back as a new generation (audited); its "
        "plan applies as the lane's `apply` policy allows. Off unless the lane says so, prod "
        "lanes included",
    )

    @property
    def is_prod(self) -> bool:
        return self.tier == "prod" or (self.tier is None and self.name in PROD_LANE_NAMES)

    @model_validator(mode="after")
    def _target_has_its_source(self) -> LaneSpec:
        raise_rules(lane_rules(self.model_dump(by_alias=True)))
        return self


class PreviewPolicy(SpecModel):
    enabled: bool = False
    label: str | None = Field(default=None, description="only PRs with this label get a preview")
    template_lane: Name = "testing"
    slug: Annotated[str, AfterValidator(lambda t: check_template(t, SLUG_PLACEHOLDERS))] = (
        "pr-{number}"
    )
    domain: (
        Annotated[str, AfterValidator(lambda t: check_template(t, DOMAIN_PLACEHOLDERS))] | None
    ) = None
    image: (
        Annotated[str, AfterValidator(lambda t: check_template(t, IMAGE_PLACEHOLDERS))] | None
    ) = None
    max_active: int = Field(default=5, ge=0, le=200)
    grace_period_minutes: int = Field(default=60, ge=0)
    # auto: a scheduled pass tears down a preview whose PR closed or lost its label, once
    # the grace period is over; manual: the teardown plan waits for an operator.
    teardown: Literal["auto", "manual"] = "auto"
    # A preview whose PR got no new commit for this long ends as if the PR had closed.
    ttl_hours: int | None = Field(default=None, ge=1)
    # Pull requests from forks get no preview, except from these fork owners; even then a
    # fork's preview never receives the product's secrets.
    allow_forks: list[Name] = Field(default_factory=list)
    # on-push: a new head deploys at the next pass; on-request: only once a workflow asks
    # for that preview at that head (after CI built its image), so a preview never points
    # at an image that does not exist yet.
    deploy: Literal["on-push", "on-request"] = "on-push"

    @model_validator(mode="after")
    def _domain_renders_to_a_host(self) -> PreviewPolicy:
        raise_rules(preview_rules(self.model_dump(by_alias=True)))
        return self


class PromotionGateSpec(SpecModel):
    """What must hold before anything is promoted into a lane of the product (for example
    "a database backup finished in the last hour"): one HTTP check or one command."""

    url: UrlText | None = Field(default=None, description="an HTTP check, SSRF-safe")
    expect_status: int = Field(default=200, ge=100, le=599)
    command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="argv run where `setpoint promote` runs, no shell; exit 0 passes",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_check(self) -> PromotionGateSpec:
        if (self.url is None) == (self.command is None):
            raise ValueError("a promotion gate is either `url` or `command`, exactly one")
        return self


class PromotionPolicy(SpecModel):
    gate: PromotionGateSpec | None = None


class ProductSpec(SpecModel):
    repository: Repository
    dokploy: DokployTarget
    runtime: ProductRuntime
    env: PlainEnv = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    lanes: list[LaneSpec] = Field(min_length=1)
    preview: PreviewPolicy = Field(default_factory=PreviewPolicy)
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)

    @model_validator(mode="after")
    def _lanes_are_consistent(self) -> ProductSpec:
        raise_rules(product_rules(self.model_dump(by_alias=True)))
        return self

    def lane(self, name: str) -> LaneSpec:
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise KeyError(name)
