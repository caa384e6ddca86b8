"""The product lane kind: wires desired lanes, observer, differ and executor for the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployError
from reconciler.core.plans import Blocker, BlockerType
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import LaneDiff, Observation
from reconciler.kinds.product.diff import SecretFacts, diff_product_lane
from reconciler.kinds.product.execute import ProductExecutor
from reconciler.kinds.product.lanes import KIND, ProductLane, product_lanes
from reconciler.kinds.product.observe import ProductObserver
from reconciler.kinds.product.observed import ObservedProductLane
from reconciler.records import ownership
from reconciler.records.ownership import OwnershipSnapshot
from reconciler.runtime import Runtime
from reconciler.secrets import SecretUnavailable, StoreReader, fingerprint, resolve


@dataclass
class ProductLanes:
    fleet: DesiredFleet
    ownership: OwnershipSnapshot
    client: DokployClient
    salt: str
    environ: Mapping[str, str] | None = None
    store: StoreReader | None = None
    kind: str = KIND

    def __post_init__(self) -> None:
        self.desired: dict[str, ProductLane] = {}
        for document in self.fleet.of_kind("Product"):
            for lane in product_lanes(document, self.fleet.generations[document.key]):
                self.desired[lane.lane] = lane

    def desired_lanes(self) -> list[str]:
        return sorted(self.desired)

    def removed_lanes(self) -> list[str]:
        """Lanes Setpoint owns services for that the desired state no longer declares."""
        return sorted(self.ownership.lanes("dokploy") - set(self.desired))

    def all_lanes(self) -> list[str]:
        return sorted({*self.desired_lanes(), *self.removed_lanes()})

    def generation(self, lane: str) -> int | None:
        return self.desired[lane].generation if lane in self.desired else None

    def apply_policy(self, lane: str) -> str | None:
        return self.desired[lane].apply_policy if lane in self.desired else None

    def owned_count(self) -> int:
        return self.ownership.count("dokploy")

    def remember(self, engine: Engine) -> bool:
        changed = 0
        for name, lane in self.desired.items():
            owned = self.ownership.service_of(name)
            if owned is not None and owned.protected != lane.protect:
                changed += ownership.set_protected(engine, name, lane.protect)
        return changed > 0

    async def preflight(self) -> str | None:
        try:
            await self.client.preflight()
        except DokployError as exc:
            return f"Dokploy preflight failed: {exc}"
        return None

    def executor(self, runtime: Runtime) -> ProductExecutor:
        return ProductExecutor(
            client=self.client,
            engine=runtime.engine,
            salt=self.salt,
            health_check=runtime.health_check,
            environ=self.environ,
            store=self.store,
            poll_interval=runtime.settings.deploy_poll_seconds,
        )

    async def observe(self, lanes: Sequence[str]) -> Observation:
        wanted = [self.desired[name] for name in lanes if name in self.desired]
        removed = [name for name in lanes if name not in self.desired]
        observer = ProductObserver(self.client, self.ownership, self.salt)
        observation = await observer.observe(wanted, removed)
        # Secret sources are read too: a rotation between plan and apply makes the plan stale
        # before any side effect, as a change in Dokploy would.
        for lane in wanted:
            facts, _ = self.secret_facts(lane)
            for key, value_fingerprint in facts.desired.items():
                observation.fingerprints[f"secret:{lane.lane}/{key}"] = value_fingerprint
        return observation

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        desired = self.desired.get(lane)
        observed = observation.lanes.get(lane, ObservedProductLane())
        facts, problems = self.secret_facts(desired)
        if problems:
            return LaneDiff(
                lane=lane,
                blockers=[
                    Blocker(type=BlockerType.preflight_failed, lane=lane, message=problem)
                    for problem in problems
                ],
            )
        return diff_product_lane(lane, desired, observed, facts)

    def secret_facts(self, desired: ProductLane | None) -> tuple[SecretFacts, list[str]]:
        fingerprints: dict[str, str] = {}
        problems: list[str] = []
        for key, ref in sorted((desired.secrets if desired else {}).items()):
            try:
                fingerprints[key] = fingerprint(
                    self.salt, resolve(ref, environ=self.environ, store=self.store)
                )
            except SecretUnavailable as exc:
                problems.append(f"{key}: {exc}")
        return SecretFacts(salt=self.salt, desired=fingerprints), problems
