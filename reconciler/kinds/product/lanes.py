"""A product lane resolved from its Product: merged env, secret references, domains, checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from desired_state.document import Document
from desired_state.dotenv import carry_problem
from desired_state.product import ProductSpec
from desired_state.secrets import SecretRef
from reconciler.core.plans import lane_key
from reconciler.kinds.product.identity import with_identity
from reconciler.kinds.product.policy import ApplyPolicy

KIND = "product"


@dataclass(frozen=True)
class DesiredDomain:
    host: str
    path: str
    port: int
    https: bool
    service: str | None  # compose service name

    @property
    def key(self) -> str:
        return f"{self.host}{self.path}"


@dataclass(frozen=True)
class DesiredHealthCheck:
    url: str
    expect_status: int
    timeout_seconds: float
    expect_identity: bool = False  # the answer must report the lane's `identity` back


@dataclass(frozen=True)
class ProductLane:
    lane: str  # lane key, "product:shop/testing"
    product: str
    lane_name: str
    generation: int
    target: str  # application | compose
    project: str
    environment: str
    service_name: str
    image: str | None
    compose_file: str | None
    env: dict[str, str]
    secrets: dict[str, SecretRef]
    domains: tuple[DesiredDomain, ...]
    replicas: int
    health_checks: tuple[DesiredHealthCheck, ...]
    deploy_timeout_seconds: float
    apply_policy: ApplyPolicy
    protect: bool
    prod: bool
    require_reason: bool = False
    server: str | None = None
    notes: list[str] = field(default_factory=list)
    # Desired state the current rules refuse, stored before they existed: blocks the lane.
    problems: tuple[str, ...] = ()
    # Other desired lanes declaring one of this lane's routes: route -> their lane keys.
    route_rivals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The lane key this lane was renamed from (`renamedFrom`): it takes over that lane's
    # service instead of a delete and a create.
    previous_lane: str | None = None
    # The commit the lane's image was built from, when known (a preview's head). It is part
    # of the configuration a deploy records, so a new commit is deployed even when the image
    # reference stays the same (a tag CI overwrites, `...:pr-{number}`).
    source_sha: str | None = None
    # How often a converged lane's health is checked again (`healthIntervalSeconds`); None:
    # the installation's default.
    health_interval_seconds: float | None = None
    # `runtimeIdentity`: the env values Setpoint injected (`identity.py`); empty when off.
    identity: Mapping[str, str] = field(default_factory=dict)


def lane_name(product: str, lane: str) -> str:
    """The lane key of a product's lane."""
    return lane_key(KIND, f"{product}/{lane}")


def lanes_of_product(document: Document, generation: int) -> list[ProductLane]:
    spec = document.spec
    assert isinstance(spec, ProductSpec)
    lanes: list[ProductLane] = []
    for lane in spec.lanes:
        domains = tuple(
            DesiredDomain(
                host=d.host,
                path=d.path,
                port=d.port or spec.runtime.port,
                https=d.https,
                service=d.service,
            )
            for d in lane.domains
        )
        checks = tuple(
            DesiredHealthCheck(
                url=check.url
                or _default_check_url(domains, check.path or spec.runtime.health_path),
                expect_status=check.expect_status,
                timeout_seconds=check.timeout_seconds,
                expect_identity=check.expect_identity,
            )
            for check in lane.health_checks
            if check.url or domains
        )
        unchecked = len(lane.health_checks) - len(checks)
        secrets = {**spec.secrets, **lane.secrets}
        env = {**spec.env, **lane.env}
        resolved = ProductLane(
            lane=lane_name(document.name, lane.name),
            product=document.name,
            lane_name=lane.name,
            generation=generation,
            target=lane.target,
            project=spec.dokploy.project,
            environment=lane.environment or spec.dokploy.environment,
            service_name=f"{document.name}-{lane.name}",
            image=lane.image,
            compose_file=lane.compose_file,
            # A key with a secret source is never plain env, whatever was stored
            # (validation refuses the overlap; this holds for state stored before that).
            env={k: v for k, v in env.items() if k not in secrets},
            secrets=secrets,
            domains=domains,
            replicas=lane.replicas,
            health_checks=checks,
            deploy_timeout_seconds=lane.deploy_timeout_seconds,
            health_interval_seconds=lane.health_interval_seconds,
            apply_policy=ApplyPolicy(lane.apply),
            protect=lane.protect,
            prod=lane.is_prod,
            require_reason=lane.require_reason,
            server=spec.dokploy.server,
            problems=_problems(env, secrets, unchecked),
            previous_lane=_previous_lane(document.name, lane.renamed_from),
        )
        lanes.append(with_identity(resolved) if lane.runtime_identity else resolved)
    return lanes


def _previous_lane(product: str, renamed_from: str | None) -> str | None:
    if renamed_from is None:
        return None
    old_product, _, old_lane = renamed_from.rpartition("/")
    return lane_name(old_product or product, old_lane)


# Plain env values only (secrets are never remembered): every pass builds every lane, and
# the check parses the value four times over; most values recur pass after pass.
_env_carry_problem = lru_cache(maxsize=4096)(carry_problem)


def _problems(
    env: dict[str, str], secrets: dict[str, SecretRef], unchecked: int
) -> tuple[str, ...]:
    """What validation refuses today but a spec stored earlier may still have: the lane is
    blocked until the desired state is fixed (and `setpoint desired apply`-ed)."""
    problems: list[str] = []
    overlap = sorted(set(env) & set(secrets))
    if overlap:
        problems.append(f"{', '.join(overlap)} set both in env and in secrets")
    uncarried = sorted(key for key, value in env.items() if _env_carry_problem(value) is not None)
    if uncarried:
        problems.append(
            f"env {', '.join(uncarried)} cannot be written to Dokploy unchanged "
            "(`setpoint validate` says why)"
        )
    if unchecked:
        # Never dropped: a check that cannot run must not let a deploy pass unchecked.
        problems.append(
            f"{unchecked} health check(s) have no `url` and the lane has no domain to check"
        )
    return tuple(problems)


def _default_check_url(domains: tuple[DesiredDomain, ...], path: str) -> str:
    first = domains[0]
    scheme = "https" if first.https else "http"
    return f"{scheme}://{first.host}{path}"


def with_route_rivals(lanes: Mapping[str, ProductLane]) -> dict[str, ProductLane]:
    """Each lane with the other desired lanes that declare one of its routes (stored desired
    state may hold such a pair: each was valid alone when it was stored)."""
    claims: dict[str, list[str]] = {}
    for key, lane in sorted(lanes.items()):
        for domain in lane.domains:
            claims.setdefault(domain.key, []).append(key)
    out: dict[str, ProductLane] = {}
    for key, lane in lanes.items():
        rivals = {
            d.key: tuple(r for r in claims[d.key] if r != key)
            for d in lane.domains
            if len(claims[d.key]) > 1
        }
        out[key] = replace(lane, route_rivals=rivals) if rivals else lane
    return out


def with_name_rivals(lanes: Mapping[str, ProductLane]) -> dict[str, ProductLane]:
    """Lanes that map to one Dokploy service (`orca-web`/`testing` and `orca`/`web-testing`,
    in one project and environment) are blocked: each would take the other's service for an
    unowned clash. Validation refuses such a pair; stored state may predate that."""
    claims: dict[tuple[str, str, str], list[str]] = {}
    for key, lane in sorted(lanes.items()):
        claims.setdefault((lane.project, lane.environment, lane.service_name), []).append(key)
    out = dict(lanes)
    for (_, _, service), keys in claims.items():
        for key in keys if len(keys) > 1 else ():
            others = ", ".join(k for k in keys if k != key)
            problem = f"lane {others} maps to the same Dokploy service name {service!r}"
            out[key] = replace(out[key], problems=(*out[key].problems, problem))
    return out
