"""The product lane kind: declared product lanes on the product kind's parts (`parts.py`).

Hooks it offers beyond the required contract: adoption (`AdoptingKind`: take an existing
Dokploy service into a lane), forgetting (`ForgettingKind`), and plan notes
(`RemarkingKind`: a deleted lane and a created one that look like a rename).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from desired_state.document import Document
from desired_state.secret_sources import SecretSources
from providers.dokploy.client import DokployClient
from reconciler.core.inventory import Owned, OwnershipSnapshot
from reconciler.core.plans import Action, BlastRadiusGuard
from reconciler.core.reasons import BlockerReason
from reconciler.fleet import DesiredFleet
from reconciler.health import HealthResult
from reconciler.kinds.base import (
    AdoptionPreview,
    GoneCheck,
    GoodState,
    HealthVerdict,
    HealthWatch,
    LaneDiff,
    LanePolicy,
    Observation,
    OpSpec,
    PreflightFailure,
    Promotion,
    PromotionGate,
)
from reconciler.kinds.product import restore
from reconciler.kinds.product.adopt import preview_adoption
from reconciler.kinds.product.execute import ProductExecutor
from reconciler.kinds.product.health import health_checks_of
from reconciler.kinds.product.lanes import KIND, ProductLane, lanes_of_product
from reconciler.kinds.product.observed import ServiceFacts, owned_service
from reconciler.kinds.product.ops import PRODUCT_OPS
from reconciler.kinds.product.parts import ProductParts
from reconciler.kinds.product.policy import ProductLanePolicy
from reconciler.kinds.product.reasons import PRODUCT_REASONS
from reconciler.kinds.product.renames import rename_notes
from reconciler.kinds.product.watch import check_lane_health, health_watch
from reconciler.runtime import Runtime
from reconciler.secret_sources import default_sources
from reconciler.secret_values import StoreReader


@dataclass
class ProductKind:
    fleet: DesiredFleet
    owned: OwnershipSnapshot
    client: DokployClient
    salt: str
    guard: BlastRadiusGuard = field(default_factory=BlastRadiusGuard)
    environ: Mapping[str, str] | None = None
    store: StoreReader | None = None
    sources: SecretSources = field(default_factory=default_sources)
    name: str = KIND
    ops: Mapping[str, OpSpec] = field(default_factory=lambda: PRODUCT_OPS)
    reasons: Mapping[str, BlockerReason] = field(default_factory=lambda: PRODUCT_REASONS)
    # The runtime's clock at the pass: a failed deploy's backoff is over, or not yet.
    now: float = field(kw_only=True)  # the runtime's clock at the pass: no default
    # Seconds between health checks of a converged lane that does not name its own interval.
    health_interval: float = 300.0

    def __post_init__(self) -> None:
        self.parts = ProductParts(
            kind=self.name,
            wanted=self.declared_lanes(),
            owned=self.owned,
            client=self.client,
            salt=self.salt,
            environ=self.environ,
            store=self.store,
            sources=self.sources,
            now=self.now,
        )
        self.desired: dict[str, ProductLane] = self.parts.desired

    def declared_lanes(self) -> list[ProductLane]:
        """The lanes desired state declares, in every Product document."""
        return [
            lane
            for document in self.fleet.of_kind("Product")
            for lane in lanes_of_product(document, self.fleet.generations[document.key])
        ]

    def lanes(self) -> list[str]:
        return self.parts.lanes()

    def policy(self, lane: str) -> LanePolicy:
        desired = self.desired.get(lane)
        if desired is None:
            protected = any(o.protected for o in self.owned.for_lane(lane))
            return ProductLanePolicy(generation=None, protect=protected)
        return ProductLanePolicy(
            generation=desired.generation,
            protect=desired.protect,
            apply=desired.apply_policy,
            requires_reason=desired.require_reason,
        )

    async def preflight(self) -> PreflightFailure | None:
        return await self.parts.preflight()

    async def observe(self, lanes: Sequence[str]) -> Observation:
        return await self.parts.observe(lanes)

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        return self.parts.diff(lane, observation)

    def executor(self, runtime: Runtime) -> ProductExecutor:
        return self.parts.executor(runtime)

    async def preview_adoption(
        self, lane: str, object_type: str, object_id: str
    ) -> AdoptionPreview:
        return await preview_adoption(self.parts, lane, object_type, object_id)

    async def confirm_gone(self, owned: Sequence[Owned]) -> list[GoneCheck]:
        return await self.parts.confirm_gone(owned)

    def plan_notes(self, actions: Sequence[Action]) -> list[str]:
        return rename_notes(actions)

    def health_watch(self, lane: str) -> HealthWatch | None:
        owned = owned_service(self.owned.for_lane(lane))
        return health_watch(self.desired.get(lane), ServiceFacts.of(owned), self.health_interval)

    async def check_health(self, runtime: Runtime, lane: str) -> HealthVerdict:
        return await check_lane_health(runtime, self.desired[lane])

    def good_state(self, lane: str, observation: Observation) -> GoodState | None:
        return restore.good_state(self, lane, observation)

    def rollback_due(self, lane: str, observation: Observation) -> Mapping[str, Any] | None:
        return restore.rollback_due(self, lane, observation)

    def restore(self, lane: str, state: Mapping[str, Any]) -> Document:
        return restore.restore(self, lane, state)

    def promotion(self, lane: str, image: str) -> Promotion:
        return restore.promotion(self, lane, image)

    async def probe_gate(self, runtime: Runtime, gate: PromotionGate) -> HealthResult:
        assert gate.url is not None  # the engine probes only a gate that names a URL
        probe = health_checks_of(runtime)
        return await probe(gate.url, gate.expect_status, gate.timeout_seconds)
