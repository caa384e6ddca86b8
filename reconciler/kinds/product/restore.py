"""Known-good states of product lanes, and the desired documents that bring one back.

Pure: reads the kind's desired lanes and its observation, returns documents. A product
lane is good when Dokploy runs its desired configuration (the last verified deploy's
configuration hash is the desired one) and that deploy's health checks passed. What runs
is the image Dokploy reports for the service: Dokploy v0.30 reports the reference it was
given (`dockerImage`), never a digest it resolved, so a lane runs "on a digest" only when
its image is pinned `name@sha256:...`.

A restore writes back the lane's own entry of its Product as it was at the good
generation, keeping the lane's policy fields as they are now (`apply`, `protect`,
`requireReason`, `onFailedHealth`): a rollback brings back what ran, never a looser guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from desired_state.document import Document
from desired_state.product import ProductSpec
from reconciler.errors import PromotionRefused, RollbackRefused
from reconciler.kinds.base import GoodState, Observation, Promotion, PromotionGate
from reconciler.kinds.product.lanes import KIND, ProductLane
from reconciler.kinds.product.observed import ObservedProductLane, ServiceFacts
from reconciler.kinds.product.ops import Op

if TYPE_CHECKING:
    from reconciler.kinds.product.kind import ProductKind

# Lane fields that say what Setpoint may do, not what runs: never taken from the past.
POLICY_FIELDS = ("apply", "protect", "requireReason", "onFailedHealth")


def declared_lane(kind: ProductKind, lane: str) -> tuple[ProductLane, Document] | None:
    """The lane and its Product, when `lane` is a lane a Product declares (not a preview,
    whose lanes come from pull requests, and not a lane no longer desired)."""
    desired = kind.desired.get(lane)
    if kind.name != KIND or desired is None:
        return None
    document = kind.fleet.documents.get(f"Product/{desired.product}")
    if document is None or desired.lane_name not in {x.name for x in _spec(document).lanes}:
        return None
    return desired, document


def good_state(kind: ProductKind, lane: str, observation: Observation) -> GoodState | None:
    found = declared_lane(kind, lane)
    seen = observation.lanes.get(lane)
    if found is None or not isinstance(seen, ObservedProductLane) or seen.service is None:
        return None
    desired, document = found
    facts = ServiceFacts.of(seen.owned)
    health = facts.health or {}
    if not _healthy_deploy(facts, health):
        return None
    spec = _lane_spec(document, desired.lane_name)
    verdict = {
        "ok": True,
        "config_hash": health.get("config_hash"),
        "checks": [check.url for check in desired.health_checks],
    }
    restore = {"product": desired.product, "lane": spec}
    return GoodState(running=seen.service.image, verdict=verdict, restore=restore)


def _healthy_deploy(facts: ServiceFacts, health: Mapping[str, Any]) -> bool:
    return (
        bool(health.get("ok"))
        and facts.deployed_config_hash is not None
        and health.get("config_hash") == facts.deployed_config_hash
        and facts.deploy_failed is None
    )


def rollback_due(kind: ProductKind, lane: str, observation: Observation) -> dict[str, Any] | None:
    found = declared_lane(kind, lane)
    seen = observation.lanes.get(lane)
    if found is None or not isinstance(seen, ObservedProductLane) or seen.owned is None:
        return None
    desired, document = found
    spec = _spec(document)
    if spec.lane(desired.lane_name).on_failed_health != "rollback":
        return None
    facts = ServiceFacts.of(seen.owned)
    health = facts.health or {}
    if health.get("ok", True) or health.get("config_hash") != facts.deployed_config_hash:
        return None
    # Only while the failing deploy is the desired configuration (the diff checks its health
    # again rather than deploying): once a rollback is stored, the lane asks for another.
    if not any(a.op == Op.check_health for a in kind.diff(lane, observation).actions):
        return None
    return {
        "ok": False,
        "config_hash": health.get("config_hash"),
        "check": health.get("check"),
        "reason": health.get("reason"),
        "failures": health.get("failures", 1),
    }


def restore(kind: ProductKind, lane: str, state: Mapping[str, Any]) -> Document:
    found = declared_lane(kind, lane)
    if found is None:
        raise RollbackRefused(f"{lane} is not a lane a Product declares")
    desired, document = found
    if state.get("product") != desired.product or not isinstance(state.get("lane"), Mapping):
        raise RollbackRefused(f"the known-good state is not one of {lane}")
    current = _lane_spec(document, desired.lane_name)
    wanted = dict(state["lane"])
    wanted["name"] = desired.lane_name  # the lane may have been renamed since
    for field in POLICY_FIELDS:
        wanted.pop(field, None)
        if field in current:
            wanted[field] = current[field]
    try:
        return _with_lane(document, desired.lane_name, wanted)
    except ValidationError as exc:
        raise RollbackRefused(f"{lane}: that state breaks today's rules: {_first(exc)}") from None


def promotion(kind: ProductKind, lane: str, image: str) -> Promotion:
    found = declared_lane(kind, lane)
    if found is None:
        raise PromotionRefused(f"{lane} is not a lane a Product declares")
    desired, document = found
    if desired.target != "application":
        raise PromotionRefused(f"{lane} is a {desired.target} lane: only applications run images")
    wanted = {**_lane_spec(document, desired.lane_name), "image": image}
    gate = _spec(document).promotion.gate
    checked = (
        PromotionGate(
            url=gate.url,
            expect_status=gate.expect_status,
            command=tuple(gate.command or ()),
            timeout_seconds=gate.timeout_seconds,
        )
        if gate is not None
        else None
    )
    try:
        written = _with_lane(document, desired.lane_name, wanted)
    except ValidationError as exc:
        raise PromotionRefused(f"{lane} cannot run {image}: {_first(exc)}") from None
    return Promotion(document=written, gate=checked)


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _spec(document: Document) -> ProductSpec:
    spec = document.spec
    assert isinstance(spec, ProductSpec)
    return spec


def _lane_spec(document: Document, name: str) -> dict[str, Any]:
    return _spec(document).lane(name).model_dump(mode="json", by_alias=True)


def _with_lane(document: Document, name: str, wanted: Mapping[str, Any]) -> Document:
    """The document with lane `name` replaced by `wanted`, validated as a whole (a restored
    lane must still satisfy today's rules: a prod lane's digest, routes, secrets)."""
    spec = document.spec_dict()
    spec["lanes"] = [dict(wanted) if lane["name"] == name else lane for lane in spec["lanes"]]
    return Document.model_validate(
        {
            "apiVersion": document.api_version,
            "kind": document.kind,
            "metadata": document.metadata,
            "spec": ProductSpec.model_validate(spec),
        }
    )
