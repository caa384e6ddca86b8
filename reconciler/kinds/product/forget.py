"""Confirming a product lane's services (and environments it created) are gone, for
`setpoint forget`.

Each owned object is read by id; only Dokploy's "not found" for that read confirms it is
gone. A failed read, or an object of a type this kind cannot read, confirms nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployError, DokployNotFound
from reconciler.core.inventory import Owned
from reconciler.kinds.base import GoneCheck
from reconciler.kinds.product.ops import DOKPLOY, ENVIRONMENT
from reconciler.kinds.product.services import SERVICES, strategy_for


async def confirm_gone(client: DokployClient, owned: Sequence[Owned]) -> list[GoneCheck]:
    return [await _check(client, item) for item in owned]


async def _check(client: DokployClient, item: Owned) -> GoneCheck:
    what = f"{item.object_type} {item.name!r} ({item.object_id})"
    readable = item.object_type in SERVICES or item.object_type == ENVIRONMENT
    if item.provider != DOKPLOY or not readable:
        return GoneCheck(item.ref, False, f"cannot read a {item.provider} {item.object_type}")
    try:
        if item.object_type == ENVIRONMENT:
            await client.environment_one(item.object_id)
        else:
            await strategy_for(item.object_type).read(client, item.object_id)
    except DokployNotFound:
        return GoneCheck(item.ref, True)
    except DokployError as exc:
        return GoneCheck(item.ref, False, f"reading {what} failed: {exc}")
    return GoneCheck(item.ref, False, f"{what} still exists in Dokploy")
