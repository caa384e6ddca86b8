"""What every product-lane rule reads and writes with: the lane as seen, the keys that
link a plan's actions, the configuration hash a deploy records, one-field safe actions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from reconciler.core.plans import BlockerType, Change, object_fingerprint
from reconciler.kinds.base import LaneDiff, OpParams, ProposedAction
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.observed import (
    ObservedProductLane,
    ObservedService,
    ServiceFacts,
)
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.params import Link, ServiceLink, unknown_refs
from reconciler.kinds.product.route_moves import RouteMove
from reconciler.kinds.product.services import strategy_for

DEFAULT_ENVIRONMENT = "production"


@dataclass(frozen=True)
class SecretFacts:
    """Fingerprints only: the diff never holds a secret value it could leak."""

    salt: str
    desired: Mapping[str, str]  # key -> fingerprint of the value the reference resolves to


@dataclass(frozen=True)
class SecretProblem:
    """Why a lane's secret cannot be used: its source cannot be read (time may mend it), or
    its value cannot be written to Dokploy unchanged (the operator must change it)."""

    type: BlockerType  # the engine's preflight_failed or invalid_desired_state
    message: str  # names the key and the source, never the value


def uncarried_secret(key: str, reason: str) -> str:
    return (
        f"secret {key}: the value its source holds cannot be written to Dokploy unchanged: "
        f"{reason}; change the secret's value"
    )


def project_key(project: str) -> str:
    return f"project:{project}"


def environment_key(project: str, environment: str) -> str:
    return f"environment:{project}/{environment}"


def service_key(lane: str) -> str:
    return f"service:{lane}"


def deleted_service_key(service_id: str) -> str:
    """What a service's deletion provides: its environment is deleted only after it."""
    return f"deleted:{service_id}"


def deploy_title(lane: str, config_hash: str) -> str:
    """The title Setpoint gives a deploy: the lane and the configuration it was asked for,
    so a deploy in flight when its worker died is found again in Dokploy by the next plan
    (and awaited, not asked for again). A salted fingerprint, never a value."""
    return f"setpoint {lane} config {config_hash[:16]}"


def desired_config_hash(lane: ProductLane, secrets: SecretFacts) -> str:
    """What the running service is built from; a change here needs a deploy to take effect."""
    fields: dict[str, Any] = {
        "image": lane.image,
        "compose_file": lane.compose_file,
        "env": dict(sorted(lane.env.items())),
        "secrets": dict(sorted(secrets.desired.items())),
    }
    if lane.source_sha is not None:  # left out when unknown: product lanes' hashes stay
        fields["source_sha"] = lane.source_sha
    if strategy_for(lane.target).has_replicas and lane.replicas != 1:
        # Saved by application.update, applied by Swarm only at the next deploy. Left out at
        # the default (1) so the hashes of deploys made before replicas counted still match:
        # any change of replicas still changes the hash.
        fields["replicas"] = lane.replicas
    if strategy_for(lane.target).domains_need_deploy:
        fields["domains"] = sorted(
            (d.host, d.path, d.port, d.https, d.service) for d in lane.domains
        )
    return object_fingerprint(secrets.salt, fields)


@dataclass(frozen=True)
class SeenLane:
    """What every convergence rule reads: the desired lane and what was seen of it."""

    desired: ProductLane
    observed: ObservedProductLane
    secrets: SecretFacts
    now: float | None = None  # the runtime's clock; None: every backoff is over
    # Routes this plan frees for the lane on services it deletes (a rename): not conflicts.
    moving_in: tuple[RouteMove, ...] = ()
    # Services this plan deletes (ids): what they route is no rival of the lane's.
    deleted_here: frozenset[str] = frozenset()

    @property
    def service(self) -> ObservedService | None:
        return self.observed.service

    @property
    def target(self) -> str:
        return f"dokploy:{self.desired.target}/{self.desired.service_name}"

    @cached_property  # read by several rules of the lane
    def facts(self) -> ServiceFacts:
        return ServiceFacts.of(self.observed.owned)

    @cached_property  # one per lane, however many of its actions name the service
    def service_ref(self) -> ServiceLink:
        service = self.service
        return ServiceLink(
            ref=service_key(self.desired.lane),
            id=service.id if service else None,
            type=self.desired.target,
        )


# A rule proposes the actions for one part of the lane and says why, if at all, the
# running service must be deployed again for them to take effect.
Rule = Callable[[SeenLane, LaneDiff], str | None]


def safe_action(
    op: Op,
    target: str,
    reason: str,
    change: tuple[str, Any, Any],
    params: OpParams,
    *,
    provides: tuple[str, ...] = (),
) -> ProposedAction:
    """A safe action that writes one thing: a create, or one field of the service. It
    waits for the objects its parameters link to that this plan makes."""
    field, before, after = change
    # The fields' values as the model holds them (`extra="forbid"`: there is nothing else);
    # `dict(params)` first asks the model for `keys`, a failed attribute look-up per action.
    links = [value for value in vars(params).values() if isinstance(value, Link)]
    return ProposedAction(
        key=op.value,
        op=op,
        target=target,
        reason=reason,
        changes=[Change(field=field, before=before, after=after)],
        params=params,
        after=unknown_refs(*links),
        provides=provides,
    )
