"""Lane kinds: open this folder to see how a kind plugs in (`base.py` is the whole contract).

`all_kinds` is the one place that names the kinds; the engine receives it through
`Runtime.kinds` and never imports a kind itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.core.inventory import OwnershipSnapshot
    from reconciler.fleet import DesiredFleet
    from reconciler.kinds.base import LaneKind
    from reconciler.runtime import Runtime


def all_kinds(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> list[LaneKind]:
    """The kinds this deployment can reconcile: each one whose providers are configured."""
    from reconciler.kinds.product.kind import ProductKind
    from reconciler.kinds.product.ops import DOKPLOY

    kinds: list[LaneKind] = []
    if runtime.has_provider(DOKPLOY):
        from providers.dokploy.client import DokployClient
        from reconciler.core.plans import BlastRadiusGuard

        kinds.append(
            ProductKind(
                fleet=fleet,
                owned=owned,
                client=runtime.provider(DOKPLOY, DokployClient),
                salt=runtime.secret_salt(),
                guard=BlastRadiusGuard(
                    max_deletions=runtime.settings.max_deletions,
                    max_share=runtime.settings.max_deletion_share,
                ),
                environ=runtime.environ,
                store=runtime.secret_store,
            )
        )
    return kinds
