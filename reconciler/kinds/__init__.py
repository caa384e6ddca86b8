"""Lane kinds: open this folder to see how a kind plugs in (`base.py` is the whole contract).

`all_kinds` is the one place that names the kinds; the engine receives it through
`Runtime.kinds` and never imports a kind itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.core.inventory import OwnershipSnapshot
    from reconciler.fleet import DesiredFleet
    from reconciler.kinds.base import LaneKind
    from reconciler.runtime import Runtime


def all_kinds(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> list[LaneKind]:
    """The kinds this deployment can reconcile: each one whose providers are configured."""
    from reconciler.kinds.product.ops import DOKPLOY
    from reconciler.kinds.runner.hosts import adapter_providers

    kinds: list[LaneKind] = []
    if runtime.has_provider(DOKPLOY):
        kinds.append(_product_kind(runtime, fleet, owned))
        if runtime.has_provider(GITHUB):
            kinds.append(_preview_kind(runtime, fleet, owned))
    if runtime.has_provider(GITHUB) and any(map(runtime.has_provider, adapter_providers())):
        kinds.append(_runner_kind(runtime, fleet, owned))
    return kinds


GITHUB = "github"


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
