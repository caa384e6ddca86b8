"""Diff one product lane: desired against observed, as a pure function.

Inputs are plain data (the desired lane, what was observed, secret fingerprints); the
output is proposed actions, blockers and notes. Nothing here reads or writes anything.
This module decides which rules run; the rules live by what they converge:
`service_rules` (project, environment, service, image, compose file, replicas),
`env_rules`, `domain_rules` and `deploy_rules`, all reading a `rule_input.SeenLane`.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.plans import Blocker, BlockerType, Change
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.deploy_rules import deploy_rule
from reconciler.kinds.product.domain_rules import domains_rule
from reconciler.kinds.product.env_rules import env_rule
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.observed import ObservedEnvironment, ObservedProductLane
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.params import DeleteEnvironment, DeleteService, ReleaseDomain
from reconciler.kinds.product.route_moves import RouteMove, RoutePlan
from reconciler.kinds.product.rule_input import (
    DEFAULT_ENVIRONMENT,
    Rule,
    SecretFacts,
    SeenLane,
    deleted_service_key,
    service_key,
)
from reconciler.kinds.product.service_rules import (
    compose_file_rule,
    environment_rule,
    image_rule,
    project_rule,
    replicas_rule,
    service_rule,
    take_environment_rule,
)


@dataclass(frozen=True)
class Leftovers:
    """What a removed lane's environment deletion weighs: the (project, environment) pairs
    desired lanes name, and the services this plan deletes (`RoutePlan.deleted`)."""

    in_use: frozenset[tuple[str, str]] = frozenset()
    deleted: frozenset[str] = frozenset()


def diff_product_lane(
    lane_name: str,
    desired: ProductLane | None,
    observed: ObservedProductLane,
    secrets: SecretFacts,
    *,
    now: float | None = None,
    routes: RoutePlan | None = None,
    in_use: frozenset[tuple[str, str]] = frozenset(),
) -> LaneDiff:
    """`now` (the runtime's clock) says whether a failed deploy's backoff is over; without
    it, it is. `routes`: the services this plan deletes and the routes it moves from them
    to lanes that declare them (`plan_routes`); each lane takes its part. `in_use`: the
    (project, environment) pairs desired lanes name, whose environments are never deleted."""
    routes = routes or RoutePlan()
    moves = routes.moves
    result = LaneDiff(lane=lane_name)
    if desired is None:
        moving_out = [m for m in moves if m.from_lane == lane_name]
        _removed_lane(lane_name, observed, result, moving_out, Leftovers(in_use, routes.deleted))
        return result
    if desired.problems:
        result.blockers.append(
            Blocker(
                type=BlockerType.invalid_desired_state,
                lane=lane_name,
                message=f"{lane_name}: {'; '.join(desired.problems)}: fix the desired state "
                "and `setpoint desired apply` it",
            )
        )
        return result
    if observed.clashes and observed.owned is None:
        result.blockers.append(
            Blocker(
                type=BlockerType.not_owned,
                lane=lane_name,
                message=(
                    f"{', '.join(observed.clashes)} already exists with the lane's name "
                    f"{desired.service_name!r} and Setpoint does not own it; it is left untouched. "
                    f"Adopt it with `setpoint adopt {lane_name} --application-id ID` "
                    "(or --compose-id), or rename one of them."
                ),
                details={"clashes": observed.clashes},
            )
        )
        return result
    if observed.clashes:
        result.notes.append(f"{lane_name}: unowned {', '.join(observed.clashes)} left untouched")
    service = observed.service
    if service is not None and desired.server and service.server_id != observed.server_id:
        result.notes.append(
            f"{lane_name}: {service.type} {service.name} is not on Dokploy server "
            f"{desired.server!r}; Setpoint does not move services between servers"
        )
    if observed.vanished is not None:
        result.notes.append(
            f"{lane_name}: owned {observed.vanished.object_type} {observed.vanished.object_id} "
            "was deleted outside Setpoint; it will be created again"
        )
    moving_in = tuple(m for m in moves if m.to_lane == lane_name)
    _converge_lane(SeenLane(desired, observed, secrets, now, moving_in, routes.deleted), result)
    return result


def _removed_lane(
    lane_name: str,
    observed: ObservedProductLane,
    result: LaneDiff,
    moving_out: list[RouteMove],
    leftovers: Leftovers,
) -> None:
    _remove_service(lane_name, observed, result, moving_out)
    if not result.blockers:
        for environment in observed.environments:
            _remove_environment(lane_name, environment, result, leftovers)


def _remove_service(
    lane_name: str, observed: ObservedProductLane, result: LaneDiff, moving_out: list[RouteMove]
) -> None:
    owned, service = observed.owned, observed.service
    if owned is None or service is None:
        return  # no service of ours is left
    if owned.protected:
        result.blockers.append(
            Blocker(
                type=BlockerType.protected_lane,
                lane=lane_name,
                message=(
                    f"lane {lane_name} is no longer desired, but its {service.type} "
                    f"{service.name!r} is protected and is never deleted by Setpoint"
                ),
            )
        )
        return
    result.actions.extend(_release(move, service.type, service.name) for move in moving_out)
    result.actions.append(
        ProposedAction(
            key="delete",
            op=Op.delete_service,
            target=f"dokploy:{service.type}/{service.name}",
            reason=f"lane {lane_name} is no longer in the desired state",
            changes=[Change(field="service", before=service.name, after=None)],
            params=DeleteService(service_type=service.type, service_id=service.id),
            provides=(deleted_service_key(service.id),),
        )
    )


def _remove_environment(
    lane_name: str, environment: ObservedEnvironment, result: LaneDiff, leftovers: Leftovers
) -> None:
    """An environment the lane's create made goes with the last lane in it, once it holds
    nothing but services this plan deletes (after them). Never the default environment."""
    where = f"{environment.project}/{environment.name}"
    if not environment.found:
        result.notes.append(
            f"{lane_name}: environment {environment.owned.object_id} it created is no longer "
            "listed by Dokploy; `setpoint forget` drops its record once it is confirmed gone"
        )
        return
    if environment.is_default or environment.name == DEFAULT_ENVIRONMENT:
        return
    if (environment.project, environment.name) in leftovers.in_use:
        return  # a desired lane still runs there
    remaining = sorted(environment.service_ids - leftovers.deleted)
    if remaining or environment.databases:
        databases = [f"{environment.databases} database(s)"] if environment.databases else []
        result.notes.append(
            f"{lane_name}: environment {where} it created is kept: it still holds "
            f"{', '.join([*remaining, *databases])}"
        )
        return
    result.actions.append(
        ProposedAction(
            key=f"delete-environment:{environment.owned.object_id}",
            op=Op.delete_environment,
            target=f"dokploy:environment/{where}",
            reason=f"Setpoint created it for lane {lane_name}, and no desired lane is left in it",
            changes=[Change(field="environment", before=environment.name, after=None)],
            params=DeleteEnvironment(
                environment_id=environment.owned.object_id, name=environment.name
            ),
            after=tuple(deleted_service_key(i) for i in sorted(environment.service_ids)),
        )
    )


def _release(move: RouteMove, service_type: str, service_name: str) -> ProposedAction:
    """Free a route on the service this plan deletes, once the lane taking it has a service."""
    return ProposedAction(
        key=f"release:{move.route}",
        op=Op.release_domain,
        target=f"dokploy:{service_type}/{service_name}/domain/{move.route}",
        reason=f"{move.to_lane} takes {move.route} over; this service is deleted by this plan",
        changes=[Change(field="domain", before=move.route, after=None)],
        params=ReleaseDomain(domain_id=move.domain_id),
        provides=(move.ref,),
        # after the taking lane's service exists (this plan may create it)
        after=() if move.to_service is not None else (service_key(move.to_lane),),
    )


def _converge_lane(seen: SeenLane, result: LaneDiff) -> None:
    deploy_reasons = [reason for rule in _RULES if (reason := rule(seen, result)) is not None]
    deploy_rule(seen, deploy_reasons, result)
    deploys = any(action.op == Op.deploy for action in result.actions)
    if deploys and not seen.desired.health_checks:
        result.notes.append(
            f"{seen.desired.lane}: not verified: no health check (the deploy is not checked; add "
            "healthChecks to the lane)"
        )


_RULES: tuple[Rule, ...] = (
    project_rule,
    environment_rule,
    take_environment_rule,
    service_rule,
    image_rule,
    compose_file_rule,
    replicas_rule,
    env_rule,
    domains_rule,
)
