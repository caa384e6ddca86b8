"""Adoption: take an existing, unowned Dokploy service into a product lane.

This module works out what adopting would mean (the claim to record and what the next
plan would change); `core/adoption.py` records it, audited, for every kind that adopts.
Nothing in Dokploy changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from providers.dokploy.client import DokployClient
from providers.dokploy.envfile import parse as parse_env
from providers.dokploy.errors import DokployNotFound
from providers.dokploy.models import Application, Compose
from reconciler.core.inventory import Owned
from reconciler.core.outcomes import Claim, ObjectRef
from reconciler.errors import AdoptionRefused
from reconciler.kinds.base import AdoptionPreview
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.lanes import KIND
from reconciler.kinds.product.observe import read_service, service_from
from reconciler.kinds.product.observed import ObservedProductLane, owned_service
from reconciler.kinds.product.ops import DOKPLOY, Op
from reconciler.kinds.product.rule_input import desired_config_hash

if TYPE_CHECKING:
    from reconciler.kinds.product.parts import ProductParts

CONFIG_OPS = frozenset({Op.set_image, Op.set_env, Op.set_compose_file})


async def preview_adoption(
    parts: ProductParts, lane: str, service_type: str, service_id: str
) -> AdoptionPreview:
    desired = parts.desired.get(lane)
    if desired is None:
        known = ", ".join(sorted(parts.desired))
        raise AdoptionRefused(f"{lane} is not a desired product lane; known: {known}")
    if desired.target != service_type:
        raise AdoptionRefused(f"lane {lane} is a {desired.target} lane, not {service_type}")
    if owned_service(parts.owned.for_lane(lane)) is not None:
        raise AdoptionRefused(f"lane {lane} already owns a service")
    ref = ObjectRef(DOKPLOY, service_type, service_id)
    other = parts.owned.owner_of(ref)
    if other is not None:
        raise AdoptionRefused(f"{service_type} {service_id} is already owned by lane {other.lane}")
    service = service_from(await _read(parts.client, service_type, service_id))
    facts, problems = parts.secret_facts(desired)
    if problems:
        raise AdoptionRefused("; ".join(problem.message for problem in problems))
    present = set(parse_env(service.env_text))
    # Assume the running deployment reflects the service's saved configuration: if that
    # matches the lane, adoption owes no deploy; if not, the config changes plan one anyway.
    config_hash = desired_config_hash(desired, facts)
    service_facts: dict[str, Any] = {
        "managed_env_keys": sorted(present & {*desired.env, *desired.secrets}),
        "plain_env_keys": [],  # nothing read from an adopted service is known not to be secret
    }
    as_owned = Owned(
        provider=DOKPLOY,
        object_type=service_type,
        object_id=service_id,
        name=service.name,
        kind=KIND,
        lane=lane,
        protected=desired.protect,
        adopted=True,
        facts={**service_facts, "deployed_config_hash": config_hash},
    )
    observed = ObservedProductLane(
        project_id="adopted",
        environment_id=service.environment_id or "adopted",
        service=service,
        owned=as_owned,
    )
    diff = diff_product_lane(lane, desired, observed, facts)
    config_matches = not any(a.op in CONFIG_OPS for a in diff.actions)
    if config_matches:
        # The running service already has the desired config: no deploy is owed for it.
        service_facts["deployed_config_hash"] = config_hash
    claim = Claim(ref=ref, name=service.name, protected=desired.protect, facts=service_facts)
    return AdoptionPreview(lane=lane, claim=claim, diff=diff)


async def _read(client: DokployClient, service_type: str, service_id: str) -> Application | Compose:
    try:
        return await read_service(client, service_type, service_id)
    except DokployNotFound:
        raise AdoptionRefused(f"Dokploy has no {service_type} {service_id}") from None
