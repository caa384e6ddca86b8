"""Lane kinds: open this folder to see how a kind plugs in (`base.py` is the whole contract).

`all_kinds` and `kind_listings` are the one place that names the kinds, and
`declared_reasons` the one that lists their blocker reasons for what is read without a
pass; the engine receives `all_kinds` through `Runtime.kinds` and never imports a kind
itself, and the adapters ask `kind_listings` what a kind's command and page show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from reconciler.core.inventory import OwnershipSnapshot
    from reconciler.core.reasons import ReasonBook
    from reconciler.fleet import DesiredFleet
    from reconciler.kinds.base import KindListing, LaneKind
    from reconciler.kinds.product.health import HealthProbe
    from reconciler.runtime import Runtime


def all_kinds(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> list[LaneKind]:
    """The kinds this deployment can reconcile: each one whose providers are configured."""
    from reconciler.kinds.product.ops import DOKPLOY

    kinds: list[LaneKind] = []
    if runtime.has_provider(DOKPLOY):
        kinds.append(_product_kind(runtime, fleet, owned))
        if runtime.has_provider(GITHUB):
            kinds.append(_preview_kind(runtime, fleet, owned))
    if runtime.has_provider(GITHUB):  # a pool whose Host type has no provider is blocked
        kinds.append(_runner_kind(runtime, fleet, owned))
    return kinds


GITHUB = "github"


def declared_reasons() -> ReasonBook:
    """Every blocker reason this Setpoint can raise, whichever kinds a deployment runs: the
    engine's and each kind's, for what is read without a pass (metrics labels, advice)."""
    from reconciler.core.reasons import reason_book
    from reconciler.kinds.preview.lanes import KIND as PREVIEW
    from reconciler.kinds.product.lanes import KIND as PRODUCT
    from reconciler.kinds.product.reasons import PRODUCT_REASONS
    from reconciler.kinds.runner.lanes import KIND as RUNNER
    from reconciler.kinds.runner.reasons import RUNNER_REASONS

    return reason_book(
        [(PRODUCT, PRODUCT_REASONS), (PREVIEW, PRODUCT_REASONS), (RUNNER, RUNNER_REASONS)]
    )


def providers_needed(fleet: DesiredFleet) -> dict[str, str]:
    """The providers without which a kind the fleet declares is not built at all, each with
    the first document that needs it (for a one-line error): a deployment starts with only
    these configured. A pool whose Host type has no provider is blocked by its kind, and
    previews are reconciled only when GitHub is there."""
    from reconciler.kinds.product.ops import DOKPLOY

    needed: dict[str, str] = {}
    for product in fleet.of_kind("Product"):
        needed.setdefault(DOKPLOY, f"Product {product.name}")
    for pool in fleet.of_kind("RunnerPool"):
        needed.setdefault(GITHUB, f"RunnerPool {pool.name}")
    return needed


def with_health_probe(providers: Mapping[str, object], probe: HealthProbe) -> dict[str, object]:
    """`providers` with `probe` as the product kind's health checks: a deployment (the demo,
    a test) that answers health checks itself hands it over this way."""
    from reconciler.kinds.product.health import HEALTH, HealthChecks

    return {**providers, HEALTH: HealthChecks(probe)}


def health_probe_of(runtime: Runtime) -> HealthProbe:
    """The probe the product kind verifies deploys with in this runtime (a deployment's own,
    else the settings')."""
    from reconciler.kinds.product.health import health_checks_of

    return health_checks_of(runtime)


def dokploy_reads_in_flight(apply_concurrency: int) -> int:
    """How many Dokploy requests the kinds on it may have in flight at once: the product
    observer's detail reads beside an apply's actions (the client's pool is sized to it)."""
    from reconciler.kinds.product.observe import DETAIL_READ_CONCURRENCY

    return DETAIL_READ_CONCURRENCY + apply_concurrency


def kind_listings() -> dict[str, KindListing]:
    """What each kind lists for people, by the plural its command and page are named by."""
    from reconciler.kinds.preview.listing import PREVIEW_LISTING
    from reconciler.kinds.runner.listing import RUNNER_LISTING

    return {listing.plural: listing for listing in (PREVIEW_LISTING, RUNNER_LISTING)}


def _dokploy_kind_fields(
    runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot
) -> dict[str, Any]:
    """What every kind on the product kind's machinery is built with."""
    from providers.dokploy.client import DokployClient
    from reconciler.kinds.product.ops import DOKPLOY
    from reconciler.secret_sources import secret_sources

    return {
        "fleet": fleet,
        "owned": owned,
        "client": runtime.provider(DOKPLOY, DokployClient),
        "salt": runtime.secret_salt(),
        "environ": runtime.environ,
        "store": runtime.secret_store,
        "sources": secret_sources(runtime.settings),
        "health_interval": runtime.settings.health_watch_interval_seconds,
    }


def _product_kind(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> LaneKind:
    from reconciler.core.plans import BlastRadiusGuard
    from reconciler.kinds.product.kind import ProductKind

    guard = BlastRadiusGuard(
        max_deletions=runtime.settings.max_deletions,
        max_share=runtime.settings.max_deletion_share,
    )
    return ProductKind(
        guard=guard, now=runtime.clock(), **_dokploy_kind_fields(runtime, fleet, owned)
    )


def _preview_kind(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> LaneKind:
    from desired_state.product import ProductSpec
    from providers.github.pulls import PullsApi
    from reconciler.core.plans import BlastRadiusGuard
    from reconciler.kinds.preview.kind import PreviewKind

    # Previews come and go with their pull requests: a pass may tear down as many as can be
    # active at once, and all of them (every PR closed), without tripping the guard.
    capacity = sum(
        d.spec.preview.max_active
        for d in fleet.of_kind("Product")
        if isinstance(d.spec, ProductSpec) and d.spec.preview.enabled
    )
    guard = BlastRadiusGuard(
        max_deletions=max(capacity, runtime.settings.max_deletions), max_share=1.0
    )
    return PreviewKind(
        guard=guard,
        github=runtime.provider(GITHUB, PullsApi),
        now=runtime.clock(),
        clock=runtime.clock,
        public_url=runtime.settings.public_url,
        **_dokploy_kind_fields(runtime, fleet, owned),
    )


def _runner_kind(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> LaneKind:
    from desired_state.runner_pool import RunnerPoolSpec
    from providers.github.runners import RunnersApi
    from reconciler.core.plans import BlastRadiusGuard
    from reconciler.kinds.runner.kind import RunnerKind

    # Scaling down is routine: a pass may remove as many runners as the pools may hold, but
    # never more than the registry owns (the share guard stays off for the same reason).
    capacity = sum(
        d.spec.count.max for d in fleet.of_kind("RunnerPool") if isinstance(d.spec, RunnerPoolSpec)
    )
    guard = BlastRadiusGuard(
        max_deletions=max(capacity, runtime.settings.max_deletions), max_share=1.0
    )
    return RunnerKind(
        fleet=fleet,
        owned=owned,
        github=runtime.provider(GITHUB, RunnersApi),
        providers=runtime.providers,
        salt=runtime.secret_salt(),
        settings=runtime.settings,
        now=runtime.clock(),
        guard=guard,
    )
