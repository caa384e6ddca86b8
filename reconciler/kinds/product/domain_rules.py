"""The domains rule: routes the lane declares, checked against every other holder first."""

from __future__ import annotations

from dataclasses import replace

from reconciler.core.plans import Blocker, Change
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.lanes import DesiredDomain, ProductLane
from reconciler.kinds.product.observed import (
    ObservedDomain,
    ObservedService,
)
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.params import DeleteDomain, ServiceLink, UpsertDomain, unknown_refs
from reconciler.kinds.product.reasons import ROUTE_CONFLICT
from reconciler.kinds.product.rule_input import SeenLane
from reconciler.kinds.product.services import strategy_for


def _route_conflicts(seen: SeenLane) -> dict[str, list[str]]:
    """Routes the lane would add that another desired lane declares or another Dokploy
    service already has. A route the lane's own service has already is its own."""
    own = {d.key for d in seen.service.domains} if seen.service else set()
    conflicts: dict[str, list[str]] = {}
    for domain in seen.desired.domains:
        if domain.key in own:
            continue
        rivals = [
            f"lane {r} (desired state)" for r in seen.desired.route_rivals.get(domain.key, ())
        ]
        said = seen.observed.route_holders.get(domain.key, [])
        ids = seen.observed.route_holder_ids.get(domain.key, [""] * len(said))
        others = [who for who, i in zip(said, ids, strict=True) if i not in seen.deleted_here]
        holders = [*rivals, *others]
        if holders:
            conflicts[domain.key] = holders
    return conflicts


def _route_blocker(seen: SeenLane, conflicts: dict[str, list[str]]) -> Blocker:
    lane = seen.desired
    taken = "; ".join(f"{route} is taken by {', '.join(who)}" for route, who in conflicts.items())
    return Blocker(
        type=ROUTE_CONFLICT.code,
        lane=lane.lane,
        message=(
            f"{taken}: Setpoint will not route it to {lane.service_name!r} as well. Remove the "
            "domain from one of them (or delete the other service's domain in Dokploy)"
        ),
        details={"routes": conflicts},
    )


def _duplicated_routes(service: ObservedService | None) -> dict[str, list[str]]:
    """Routes the lane's service has more than one domain for (route -> domain ids)."""
    ids: dict[str, list[str]] = {}
    for domain in service.domains if service else ():
        ids.setdefault(domain.key, []).append(domain.domain_id)
    return {route: found for route, found in ids.items() if len(found) > 1}


def _duplicate_blocker(seen: SeenLane, duplicated: dict[str, list[str]]) -> Blocker:
    said = "; ".join(f"{route} by {len(ids)} domains" for route, ids in duplicated.items())
    return Blocker(
        type=ROUTE_CONFLICT.code,
        lane=seen.desired.lane,
        message=(
            f"{seen.desired.service_name!r} is routed {said} in Dokploy (made by hand: Dokploy "
            "accepts a duplicate host, and Traefik serves only one of them). Delete the extra "
            "domain in Dokploy; Setpoint will not guess which one is meant"
        ),
        details={"duplicated": duplicated},
    )


def domains_rule(seen: SeenLane, result: LaneDiff) -> str | None:
    conflicts = _route_conflicts(seen)
    if conflicts:
        result.blockers.append(_route_blocker(seen, conflicts))
    duplicated = _duplicated_routes(seen.service)
    if duplicated:
        result.blockers.append(_duplicate_blocker(seen, duplicated))
    changed = _domain_actions(
        seen.desired, seen.service, seen.service_ref, seen.target, result, skip=set(conflicts)
    )
    _after_releases(seen, result)
    # Compose domains are labels in the compose file Dokploy writes: they need a deploy.
    needs_deploy = strategy_for(seen.desired.target).domains_need_deploy
    return "compose domains changed" if changed and needs_deploy else None


def _domain_actions(
    lane: ProductLane,
    service: ObservedService | None,
    service_ref: ServiceLink,
    target: str,
    result: LaneDiff,
    skip: set[str],
) -> bool:
    """`skip`: routes someone else has; never proposed (the lane is blocked instead)."""
    observed = {d.key: d for d in (service.domains if service else ())}
    desired = {d.key: d for d in lane.domains}
    changed = False
    for key, want in sorted(desired.items()):
        have = observed.get(key)
        if key in skip or (have is not None and _same_domain(want, have)):
            continue
        changed = True
        result.actions.append(
            ProposedAction(
                key=f"domain:{key}",
                op=Op.upsert_domain,
                target=f"{target}/domain/{key}",
                reason="domain missing" if have is None else "domain settings differ",
                changes=_domain_changes(want, have),
                params=UpsertDomain(
                    service=service_ref,
                    domain_id=have.domain_id if have else None,
                    host=want.host,
                    path=want.path,
                    port=want.port,
                    https=want.https,
                    service_name=want.service,
                ),
                after=unknown_refs(service_ref),
            )
        )
    for key, have in sorted(observed.items()):
        if key in desired:
            continue
        changed = True
        result.actions.append(
            ProposedAction(
                key=f"domain-delete:{key}",
                op=Op.delete_domain,
                target=f"{target}/domain/{key}",
                reason="domain is not in the desired state",
                changes=[Change(field="domain", before=key, after=None)],
                params=DeleteDomain(domain_id=have.domain_id),
            )
        )
    return changed


def _after_releases(seen: SeenLane, result: LaneDiff) -> None:
    """A route moving in is claimed only after the plan freed it on the service it leaves."""
    for move in seen.moving_in:
        for index, action in enumerate(result.actions):
            if action.op == Op.upsert_domain and action.key == f"domain:{move.route}":
                result.actions[index] = replace(action, after=(*action.after, move.ref))


def _same_domain(want: DesiredDomain, have: ObservedDomain) -> bool:
    return (want.port, want.https, want.service) == (have.port, have.https, have.service)


def _domain_changes(want: DesiredDomain, have: ObservedDomain | None) -> list[Change]:
    pairs = [
        ("port", have.port if have else None, want.port),
        ("https", have.https if have else None, want.https),
        ("service", have.service if have else None, want.service),
    ]
    changes = [
        Change(field=f"domain.{want.key}.{f}", before=b, after=a) for f, b, a in pairs if b != a
    ]
    if have is None:
        changes.insert(0, Change(field="domain", after=want.key))
    return changes
