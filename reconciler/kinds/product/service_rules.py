"""Rules for the lane's containers: project, environment, service, image, compose file and
replicas. Each proposes its actions and says why, if at all, a deploy must follow."""

from __future__ import annotations

import hashlib

from reconciler.core.plans import Change
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product import params
from reconciler.kinds.product.compose_diff import compose_diff
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.params import unknown_refs
from reconciler.kinds.product.rule_input import (
    DEFAULT_ENVIRONMENT,
    SeenLane,
    environment_key,
    project_key,
    safe_action,
    service_key,
)
from reconciler.kinds.product.services import ServiceType, strategy_for


def project_rule(seen: SeenLane, result: LaneDiff) -> None:
    lane = seen.desired
    if seen.observed.project_id is not None:
        return
    result.actions.append(
        safe_action(
            Op.create_project,
            f"dokploy:project/{lane.project}",
            f"project {lane.project!r} does not exist",
            ("project", None, lane.project),
            params.CreateProject(name=lane.project),
            provides=(
                project_key(lane.project),
                environment_key(lane.project, DEFAULT_ENVIRONMENT),
            ),
        )
    )


def environment_rule(seen: SeenLane, result: LaneDiff) -> None:
    lane, observed = seen.desired, seen.observed
    # Dokploy's project.create makes the protected `production` environment itself.
    made_by_project = observed.project_id is None and lane.environment == DEFAULT_ENVIRONMENT
    if observed.environment_id is not None or made_by_project:
        return
    result.actions.append(
        safe_action(
            Op.create_environment,
            f"dokploy:environment/{lane.project}/{lane.environment}",
            f"environment {lane.environment!r} does not exist in {lane.project!r}",
            ("environment", None, lane.environment),
            params.CreateEnvironment(
                project=params.Link(ref=project_key(lane.project), id=observed.project_id),
                name=lane.environment,
            ),
            provides=(environment_key(lane.project, lane.environment),),
        )
    )


def take_environment_rule(seen: SeenLane, result: LaneDiff) -> None:
    lane, creator = seen.desired, seen.observed.environment_left_by
    if creator is None:
        return
    result.actions.append(
        safe_action(
            Op.take_environment,
            f"dokploy:environment/{lane.project}/{lane.environment}",
            f"{creator.lane} created environment {lane.environment!r} and has no service left "
            "in it: this lane keeps it, to delete it with the last lane in it",
            ("owner", creator.lane, lane.lane),
            params.TakeEnvironment(
                environment=params.OwnedEnvironment(id=creator.object_id, name=creator.name),
                from_lane=creator.lane,
            ),
        )
    )


def service_rule(seen: SeenLane, result: LaneDiff) -> None:
    lane = seen.desired
    if seen.service is not None:
        _inherit_rule(seen, result)
        return
    reclaim = seen.observed.reclaimable
    if reclaim is not None:
        # Made by an apply that died before recording it: claim it, then treat it as new
        # (nothing after the create can have run in that lane).
        result.actions.append(
            safe_action(
                Op.reclaim_service,
                seen.target,
                f"{reclaim.type} {reclaim.name!r} ({reclaim.id}) was made by {reclaim.because}",
                ("owner", None, "setpoint"),
                params.ReclaimService(
                    service=params.OwnedService(type=reclaim.type, id=reclaim.id),
                    name=reclaim.name,
                    protected=lane.protect,
                ),
                provides=(service_key(lane.lane),),
            )
        )
        return
    result.actions.append(
        safe_action(
            strategy_for(lane.target).create_op,
            seen.target,
            f"{lane.target} {lane.service_name!r} does not exist",
            ("service", None, lane.service_name),
            params.CreateService(
                environment=params.Link(
                    ref=environment_key(lane.project, lane.environment),
                    id=seen.observed.environment_id,
                ),
                name=lane.service_name,
                protected=lane.protect,
                server_id=seen.observed.server_id,
            ),
            provides=(service_key(lane.lane),),
        )
    )


def _inherit_rule(seen: SeenLane, result: LaneDiff) -> None:
    """A renamed lane takes over its previous lane's service, which keeps its Dokploy name
    and id; the lane's other rules then converge it like any service of its own."""
    previous, service = seen.observed.inherited_from, seen.service
    if previous is None or service is None:
        return
    result.actions.append(
        safe_action(
            Op.inherit_service,
            seen.target,
            f"renamed from {previous}: takes over {service.type} {service.name!r} "
            f"({service.id}) instead of deleting it and creating another",
            ("owner", previous, seen.desired.lane),
            params.InheritService(
                service=params.OwnedService(type=service.type, id=service.id),
                from_lane=previous,
                protected=seen.desired.protect,
                environments=[
                    params.OwnedEnvironment(id=e.object_id, name=e.name)
                    for e in seen.observed.inherited_environments
                ],
            ),
            provides=(service_key(seen.desired.lane),),
        )
    )


def image_rule(seen: SeenLane, result: LaneDiff) -> str | None:
    lane, service = seen.desired, seen.service
    if lane.image is None:  # the rules refuse an application lane without one
        return None
    if lane.target != ServiceType.application or (
        service is not None and service.image == lane.image
    ):
        return None
    result.actions.append(
        safe_action(
            Op.set_image,
            seen.target,
            "image differs from the desired image",
            ("image", service.image if service else None, lane.image),
            params.SetImage(service=seen.service_ref, image=lane.image),
        )
    )
    return "image changed"


def compose_file_rule(seen: SeenLane, result: LaneDiff) -> str | None:
    lane, service = seen.desired, seen.service
    if lane.compose_file is None:  # the rules refuse a compose lane without one
        return None
    if lane.target != ServiceType.compose or (
        service is not None and service.compose_file == lane.compose_file
    ):
        return None
    before = service.compose_file if service else None
    change = Change(
        field="composeFile",
        before=_short(before),
        after=_short(lane.compose_file),
        diff=compose_diff(before, lane.compose_file),
    )
    result.actions.append(
        ProposedAction(
            key=Op.set_compose_file.value,
            op=Op.set_compose_file,
            target=seen.target,
            reason="compose file differs from the desired one",
            changes=[change],
            params=params.SetComposeFile(service=seen.service_ref, compose_file=lane.compose_file),
            after=unknown_refs(seen.service_ref),
        )
    )
    return "compose file changed"


def replicas_rule(seen: SeenLane, result: LaneDiff) -> str | None:
    lane, service = seen.desired, seen.service
    if not strategy_for(lane.target).has_replicas or lane.replicas == (
        service.replicas if service else 1
    ):
        return None
    result.actions.append(
        safe_action(
            Op.set_replicas,
            seen.target,
            "replica count differs",
            ("replicas", service.replicas if service else None, lane.replicas),
            params.SetReplicas(service=seen.service_ref, replicas=lane.replicas),
        )
    )
    # Dokploy saves replicas; Swarm scales the service only when it is deployed again.
    return "replicas changed"


def _short(text: str | None) -> str | None:
    """Compose files are long: the change names them by digest and shows a masked diff;
    the full text lives in the parameters."""
    if text is None:
        return None
    return (
        f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]} ({len(text.splitlines())} lines)"
    )
