"""Adoption: take an existing, unowned Dokploy service into a lane, explicitly and audited."""

from __future__ import annotations

from dataclasses import dataclass

from providers.dokploy.envfile import parse as parse_env
from providers.dokploy.errors import DokployNotFound
from reconciler.core.plans import Op
from reconciler.kinds.base import LaneDiff
from reconciler.kinds.product.diff import desired_config_hash, diff_product_lane
from reconciler.kinds.product.observe import service_from
from reconciler.kinds.product.observed import ObservedProductLane
from reconciler.kinds.registry import product_lanes
from reconciler.records import audit, ownership
from reconciler.records.audit import AuditEvent
from reconciler.records.ownership import Owned
from reconciler.runtime import Runtime

CONFIG_OPS = frozenset({Op.set_image, Op.set_env, Op.set_compose_file})


class AdoptionRefused(Exception):
    pass


@dataclass(frozen=True)
class AdoptionPreview:
    lane: str
    service_type: str
    service_id: str
    service_name: str
    diff: LaneDiff  # what the next plan would do once the service is owned
    managed_env_keys: tuple[str, ...]  # desired keys the service already has


async def preview_adoption(
    runtime: Runtime, lane: str, service_type: str, service_id: str
) -> AdoptionPreview:
    kind = product_lanes(runtime)
    desired = kind.desired.get(lane)
    if desired is None:
        raise AdoptionRefused(
            f"{lane} is not a desired product lane; known: {', '.join(kind.desired_lanes())}"
        )
    if desired.target != service_type:
        raise AdoptionRefused(f"lane {lane} is a {desired.target} lane, not {service_type}")
    if kind.ownership.service_of(lane) is not None:
        raise AdoptionRefused(f"lane {lane} already owns a service")
    other = kind.ownership.owns("dokploy", service_type, service_id)
    if other is not None:
        raise AdoptionRefused(f"{service_type} {service_id} is already owned by lane {other.lane}")
    try:
        detail = (
            await runtime.dokploy.application_one(service_id)
            if service_type == "application"
            else await runtime.dokploy.compose_one(service_id)
        )
    except DokployNotFound:
        raise AdoptionRefused(f"Dokploy has no {service_type} {service_id}") from None
    service = service_from(detail)
    present = set(_env_keys(service.env_text))
    facts, problems = kind.secret_facts(desired)
    if problems:
        raise AdoptionRefused("; ".join(problems))
    # Assume the running deployment reflects the service's saved configuration: if that
    # matches the lane, adoption owes no deploy; if not, the config changes plan one anyway.
    as_owned = Owned(
        provider="dokploy",
        object_type=service_type,
        object_id=service_id,
        name=service.name,
        lane=lane,
        protected=desired.protect,
        adopted=True,
        managed_env_keys=tuple(sorted(present & {*desired.env, *desired.secrets})),
        plain_env_keys=(),  # nothing read from an adopted service is known not to be secret
        deployed_config_hash=desired_config_hash(desired, facts),
    )
    observed = ObservedProductLane(
        project_id="adopted",
        environment_id=service.environment_id or "adopted",
        service=service,
        owned=as_owned,
    )
    diff = diff_product_lane(lane, desired, observed, facts)
    return AdoptionPreview(
        lane, service_type, service_id, service.name, diff, as_owned.managed_env_keys
    )


async def adopt(runtime: Runtime, preview: AdoptionPreview) -> None:
    kind = product_lanes(runtime)
    desired = kind.desired[preview.lane]
    facts, _ = kind.secret_facts(desired)
    ownership.claim(
        runtime.engine,
        provider="dokploy",
        object_type=preview.service_type,
        object_id=preview.service_id,
        name=preview.service_name,
        lane=preview.lane,
        protected=desired.protect,
        adopted=True,
    )
    config_matches = not any(a.op in CONFIG_OPS for a in preview.diff.actions)
    ownership.update_service(
        runtime.engine,
        provider="dokploy",
        object_type=preview.service_type,
        object_id=preview.service_id,
        managed_env_keys=list(preview.managed_env_keys),
        # The running service already has the desired config: no deploy is owed for it.
        deployed_config_hash=desired_config_hash(desired, facts) if config_matches else None,
    )
    audit.record(
        runtime.engine,
        event=AuditEvent.adopted,
        actor=runtime.actor,
        lane=preview.lane,
        data={
            "service_type": preview.service_type,
            "service_id": preview.service_id,
            "name": preview.service_name,
            "would_change": [f"{a.op.value} {a.target}" for a in preview.diff.actions],
        },
    )


def _env_keys(text: str) -> list[str]:
    return list(parse_env(text))
