"""The product kind's parts: everything that touches Dokploy for lanes made of Dokploy
services, given which lanes are desired.

The product kind and the preview kind are each built on one `ProductParts`: a kind says
which lanes are desired (a product's declared lanes, a preview's derived ones) and what
its lanes' policy is; the parts observe, diff, execute, check secrets, preflight Dokploy
and confirm objects gone. Each kind then says which of the contract's hooks it offers,
rather than inheriting every hook of another kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from desired_state.dotenv import carry_problem
from desired_state.secret_sources import SecretSources
from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployError, DokployForbidden, DokployUnauthorized
from reconciler.core.inventory import Owned, OwnershipSnapshot
from reconciler.core.plans import Blocker, BlockerType
from reconciler.errors import SecretUnavailable
from reconciler.kinds.base import GoneCheck, LaneDiff, Observation, PreflightFailure
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.execute import ProductExecutor
from reconciler.kinds.product.forget import confirm_gone
from reconciler.kinds.product.health import health_checks_of
from reconciler.kinds.product.lanes import (
    KIND,
    ProductLane,
    with_name_rivals,
    with_route_rivals,
)
from reconciler.kinds.product.observe import ProductObserver
from reconciler.kinds.product.observed import ObservedProductLane, owned_service
from reconciler.kinds.product.route_moves import RoutePlan, plan_routes
from reconciler.kinds.product.rule_input import SecretFacts, SecretProblem, uncarried_secret
from reconciler.runtime import Runtime
from reconciler.secret_sources import default_sources
from reconciler.secret_values import StoreReader, fingerprint, resolve


@dataclass
class ProductParts:
    """Dokploy-backed lanes of the kind named `kind` (its objects are owned under it)."""

    kind: str
    wanted: Sequence[ProductLane]  # the lanes desired state asks for, however derived
    owned: OwnershipSnapshot
    client: DokployClient
    salt: str
    environ: Mapping[str, str] | None = None
    store: StoreReader | None = None
    sources: SecretSources = field(default_factory=default_sources)
    # The runtime's clock at the pass: a failed deploy's backoff is over, or not yet.
    now: float = field(kw_only=True)  # the runtime's clock at the pass: no default
    _route_plan: tuple[Observation, RoutePlan] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        desired = {lane.lane: lane for lane in self.wanted}
        # Lanes that would share a route or a Dokploy service name learn of each other.
        self.desired: dict[str, ProductLane] = with_name_rivals(with_route_rivals(desired))
        # Environments desired lanes name: a removed lane's environment there stays.
        self.in_use = frozenset((lane.project, lane.environment) for lane in self.desired.values())
        # Only this kind's objects: a service another kind owns is never "a removed lane".
        self.removed = sorted(
            self.owned.lanes_of_kind(self.kind) - set(self.desired) - self._taken_over()
        )

    def _taken_over(self) -> set[str]:
        """Lanes a renamed lane takes over: their service moves, it is never deleted. Only
        while the renamed lane owns no service of its own (else the old one is just old)."""
        return {
            lane.previous_lane
            for lane in self.desired.values()
            if lane.previous_lane is not None
            and owned_service(self.owned.for_lane(lane.lane)) is None
        }

    def lanes(self) -> list[str]:
        return sorted({*self.desired, *self.removed})

    async def confirm_gone(self, owned: Sequence[Owned]) -> list[GoneCheck]:
        return await confirm_gone(self.client, owned)

    async def preflight(self) -> PreflightFailure | None:
        try:
            await self.client.preflight()
        except (DokployUnauthorized, DokployForbidden) as exc:
            return PreflightFailure(f"Dokploy preflight failed: {exc}", credentials_refused=True)
        except DokployError as exc:
            return PreflightFailure(f"Dokploy preflight failed: {exc}")
        return None

    def executor(self, runtime: Runtime) -> ProductExecutor:
        return ProductExecutor(
            client=self.client,
            salt=self.salt,
            health_check=health_checks_of(runtime),
            environ=self.environ,
            store=self.store,
            sources=self.sources,
            poll_interval=runtime.settings.deploy_poll_seconds,
            health_backoff=runtime.settings.health_backoff_seconds,
            deploy_backoff=runtime.settings.deploy_failed_backoff_seconds,
            clock=runtime.clock,
            parks_builds=runtime.parks_long_waits,
            # A preview shares its template lane's environment, which outlives it: only a
            # product lane records the environments it creates, to delete them with it.
            owns_created_environments=self.kind == KIND,
        )

    async def observe(self, lanes: Sequence[str]) -> Observation:
        wanted = [self.desired[name] for name in lanes if name in self.desired]
        removed = [name for name in lanes if name not in self.desired]
        observer = ProductObserver(
            self.client, self.owned, self.salt, kind=self.kind, leaving=frozenset(self.removed)
        )
        observation = await observer.observe(wanted, removed)
        # Secret sources are read too: a rotation between plan and apply makes the plan stale
        # before any side effect, as a change in Dokploy would.
        for lane in wanted:
            facts, _ = self.secret_facts(lane)
            for key, value_fingerprint in facts.desired.items():
                observation.fingerprint(lane.lane, f"secret:{lane.lane}/{key}", value_fingerprint)
        return observation

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        desired = self.desired.get(lane)
        observed = observation.lanes.get(lane, ObservedProductLane())
        facts, problems = self.secret_facts(desired)
        if problems:
            return LaneDiff(
                lane=lane,
                blockers=[
                    Blocker(type=problem.type, lane=lane, message=problem.message)
                    for problem in problems
                ],
            )
        routes = self._routes(observation)
        return diff_product_lane(
            lane, desired, observed, facts, now=self.now, routes=routes, in_use=self.in_use
        )

    def _routes(self, observation: Observation) -> RoutePlan:
        """Found once per observation, not once per lane diffed (a fleet may be large)."""
        if self._route_plan is None or self._route_plan[0] is not observation:
            self._route_plan = (observation, plan_routes(self.desired, observation))
        return self._route_plan[1]

    def secret_facts(self, desired: ProductLane | None) -> tuple[SecretFacts, list[SecretProblem]]:
        fingerprints: dict[str, str] = {}
        problems: list[SecretProblem] = []
        for key, ref in sorted((desired.secrets if desired else {}).items()):
            try:
                value = resolve(ref, sources=self.sources, environ=self.environ, store=self.store)
            except SecretUnavailable as exc:
                problems.append(SecretProblem(BlockerType.preflight_failed, f"{key}: {exc}"))
                continue
            fingerprints[key] = fingerprint(self.salt, value)
            uncarried = carry_problem(value.reveal())
            if uncarried is not None:
                problems.append(
                    SecretProblem(
                        BlockerType.invalid_desired_state, uncarried_secret(key, uncarried)
                    )
                )
        return SecretFacts(salt=self.salt, desired=fingerprints), problems
