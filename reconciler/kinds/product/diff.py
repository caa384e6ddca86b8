"""Diff one product lane: desired against observed, as a pure function.

Inputs are plain data (the desired lane, what was observed, secret fingerprints); the
output is proposed actions, blockers and notes. Nothing here reads or writes anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from desired_state.secrets import looks_like_secret
from providers.dokploy.envfile import parse as parse_env
from reconciler.core.plans import Blocker, BlockerType, Change, Risk, object_fingerprint
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.compose_diff import compose_diff
from reconciler.kinds.product.lanes import DesiredDomain, ProductLane
from reconciler.kinds.product.observed import (
    ObservedDomain,
    ObservedProductLane,
    ObservedService,
    ServiceFacts,
)
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.services import ServiceType, strategy_for
from reconciler.secret_values import fingerprint as secret_fingerprint

DEFAULT_ENVIRONMENT = "production"


@dataclass(frozen=True)
class SecretFacts:
    """Fingerprints only: the diff never holds a secret value it could leak."""

    salt: str
    desired: Mapping[str, str]  # key -> fingerprint of the value the reference resolves to


def project_key(project: str) -> str:
    return f"project:{project}"


def environment_key(project: str, environment: str) -> str:
    return f"environment:{project}/{environment}"


def service_key(lane: str) -> str:
    return f"service:{lane}"


def desired_config_hash(lane: ProductLane, secrets: SecretFacts) -> str:
    """What the running service is built from; a change here needs a deploy to take effect."""
    fields: dict[str, Any] = {
        "image": lane.image,
        "compose_file": lane.compose_file,
        "env": dict(sorted(lane.env.items())),
        "secrets": dict(sorted(secrets.desired.items())),
    }
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


def diff_product_lane(
    lane_name: str,
    desired: ProductLane | None,
    observed: ObservedProductLane,
    secrets: SecretFacts,
) -> LaneDiff:
    result = LaneDiff(lane=lane_name)
    if desired is None:
        _removed_lane(lane_name, observed, result)
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
    _converge_lane(desired, observed, secrets, result)
    return result


def _removed_lane(lane_name: str, observed: ObservedProductLane, result: LaneDiff) -> None:
    owned, service = observed.owned, observed.service
    if owned is None or service is None:
        return  # nothing of ours is left
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
    result.actions.append(
        ProposedAction(
            key="delete",
            op=Op.delete_service,
            target=f"dokploy:{service.type}/{service.name}",
            reason=f"lane {lane_name} is no longer in the desired state",
            changes=[Change(field="service", before=service.name, after=None)],
            params={"service_type": service.type, "service_id": service.id},
        )
    )


@dataclass(frozen=True)
class _Lane:
    """What every convergence rule reads: the desired lane and what was seen of it."""

    desired: ProductLane
    observed: ObservedProductLane
    secrets: SecretFacts

    @property
    def service(self) -> ObservedService | None:
        return self.observed.service

    @property
    def target(self) -> str:
        return f"dokploy:{self.desired.target}/{self.desired.service_name}"

    @property
    def facts(self) -> ServiceFacts:
        return ServiceFacts.of(self.observed.owned)

    @property
    def service_ref(self) -> dict[str, Any]:
        service = self.service
        return {
            "ref": service_key(self.desired.lane),
            "id": service.id if service else None,
            "type": self.desired.target,
        }


# A rule proposes the actions for one part of the lane and says why, if at all, the
# running service must be deployed again for them to take effect.
_Rule = Callable[[_Lane, LaneDiff], str | None]


def _converge_lane(
    lane: ProductLane, observed: ObservedProductLane, secrets: SecretFacts, result: LaneDiff
) -> None:
    seen = _Lane(lane, observed, secrets)
    deploy_reasons = [reason for rule in _RULES if (reason := rule(seen, result)) is not None]
    _deploy_rule(seen, deploy_reasons, result)


def _project_rule(seen: _Lane, result: LaneDiff) -> None:
    lane = seen.desired
    if seen.observed.project_id is not None:
        return
    result.actions.append(
        _safe_action(
            Op.create_project,
            f"dokploy:project/{lane.project}",
            f"project {lane.project!r} does not exist",
            ("project", None, lane.project),
            {
                "name": lane.project,
                "provides": [
                    project_key(lane.project),
                    environment_key(lane.project, DEFAULT_ENVIRONMENT),
                ],
            },
        )
    )


def _environment_rule(seen: _Lane, result: LaneDiff) -> None:
    lane, observed = seen.desired, seen.observed
    # Dokploy's project.create makes the protected `production` environment itself.
    made_by_project = observed.project_id is None and lane.environment == DEFAULT_ENVIRONMENT
    if observed.environment_id is not None or made_by_project:
        return
    result.actions.append(
        _safe_action(
            Op.create_environment,
            f"dokploy:environment/{lane.project}/{lane.environment}",
            f"environment {lane.environment!r} does not exist in {lane.project!r}",
            ("environment", None, lane.environment),
            {
                "project": {"ref": project_key(lane.project), "id": observed.project_id},
                "name": lane.environment,
                "provides": [environment_key(lane.project, lane.environment)],
            },
        )
    )


def _service_rule(seen: _Lane, result: LaneDiff) -> None:
    lane = seen.desired
    if seen.service is not None:
        return
    reclaim = seen.observed.reclaimable
    if reclaim is not None:
        # Made by an apply that died before recording it: claim it, then treat it as new
        # (nothing after the create can have run in that lane).
        result.actions.append(
            _safe_action(
                Op.reclaim_service,
                seen.target,
                f"{reclaim.type} {reclaim.name!r} ({reclaim.id}) was made by {reclaim.because}",
                ("owner", None, "setpoint"),
                {
                    "service": {"type": reclaim.type, "id": reclaim.id},
                    "name": reclaim.name,
                    "protected": lane.protect,
                    "provides": [service_key(lane.lane)],
                },
            )
        )
        return
    result.actions.append(
        _safe_action(
            strategy_for(lane.target).create_op,
            seen.target,
            f"{lane.target} {lane.service_name!r} does not exist",
            ("service", None, lane.service_name),
            {
                "environment": {
                    "ref": environment_key(lane.project, lane.environment),
                    "id": seen.observed.environment_id,
                },
                "name": lane.service_name,
                "protected": lane.protect,
                "server_id": seen.observed.server_id,
                "provides": [service_key(lane.lane)],
            },
        )
    )


def _image_rule(seen: _Lane, result: LaneDiff) -> str | None:
    lane, service = seen.desired, seen.service
    if lane.target != ServiceType.application or (
        service is not None and service.image == lane.image
    ):
        return None
    result.actions.append(
        _safe_action(
            Op.set_image,
            seen.target,
            "image differs from the desired image",
            ("image", service.image if service else None, lane.image),
            {"service": seen.service_ref, "image": lane.image},
        )
    )
    return "image changed"


def _compose_file_rule(seen: _Lane, result: LaneDiff) -> str | None:
    lane, service = seen.desired, seen.service
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
            params={"service": seen.service_ref, "compose_file": lane.compose_file},
        )
    )
    return "compose file changed"


def _replicas_rule(seen: _Lane, result: LaneDiff) -> str | None:
    lane, service = seen.desired, seen.service
    if not strategy_for(lane.target).has_replicas or lane.replicas == (
        service.replicas if service else 1
    ):
        return None
    result.actions.append(
        _safe_action(
            Op.set_replicas,
            seen.target,
            "replica count differs",
            ("replicas", service.replicas if service else None, lane.replicas),
            {"service": seen.service_ref, "replicas": lane.replicas},
        )
    )
    # Dokploy saves replicas; Swarm scales the service only when it is deployed again.
    return "replicas changed"


def _env_rule(seen: _Lane, result: LaneDiff) -> str | None:
    lane, facts = seen.desired, seen.facts
    owned_keys, plain_keys = set(facts.managed_env_keys), set(facts.plain_env_keys)
    env_changes = _env_changes(lane, seen.service, owned_keys, plain_keys, seen.secrets)
    if not env_changes:
        return None
    removed = sorted(k for k in owned_keys if k not in lane.env and k not in lane.secrets)
    result.actions.append(
        ProposedAction(
            key="env",
            op=Op.set_env,
            target=seen.target,
            reason="environment differs from the desired env and secrets",
            changes=env_changes,
            params={
                "service": seen.service_ref,
                "plain": dict(sorted(lane.env.items())),
                "secret_refs": {
                    k: r.model_dump(by_alias=True, exclude_none=True)
                    for k, r in sorted(lane.secrets.items())
                },
                "secret_fingerprints": dict(sorted(seen.secrets.desired.items())),
                "remove": removed,
            },
        )
    )
    return "env changed"


def _route_conflicts(seen: _Lane) -> dict[str, list[str]]:
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
        holders = [*rivals, *seen.observed.route_holders.get(domain.key, [])]
        if holders:
            conflicts[domain.key] = holders
    return conflicts


def _route_blocker(seen: _Lane, conflicts: dict[str, list[str]]) -> Blocker:
    lane = seen.desired
    taken = "; ".join(f"{route} is taken by {', '.join(who)}" for route, who in conflicts.items())
    return Blocker(
        type=BlockerType.route_conflict,
        lane=lane.lane,
        message=(
            f"{taken}: Setpoint will not route it to {lane.service_name!r} as well. Remove the "
            "domain from one of them (or delete the other service's domain in Dokploy)"
        ),
        details={"routes": conflicts},
    )


def _domains_rule(seen: _Lane, result: LaneDiff) -> str | None:
    conflicts = _route_conflicts(seen)
    if conflicts:
        result.blockers.append(_route_blocker(seen, conflicts))
    changed = _domain_actions(
        seen.desired, seen.service, seen.service_ref, seen.target, result, skip=set(conflicts)
    )
    # Compose domains are labels in the compose file Dokploy writes: they need a deploy.
    needs_deploy = strategy_for(seen.desired.target).domains_need_deploy
    return "compose domains changed" if changed and needs_deploy else None


def _deploy_rule(seen: _Lane, reasons: list[str], result: LaneDiff) -> None:
    lane, service = seen.desired, seen.service
    config_hash = desired_config_hash(lane, seen.secrets)
    if service is None:
        reasons.insert(0, "new service")
    elif not reasons and service.latest_deployment is None:
        reasons.append("never deployed")
    elif not reasons and seen.observed.owned and seen.facts.deployed_config_hash != config_hash:
        reasons.append("the running deployment predates the current configuration")
    if not reasons:
        _health_rule(seen, config_hash, result)
        return
    result.actions.append(
        ProposedAction(
            key="deploy",
            op=Op.deploy,
            target=seen.target,
            risk=Risk.disruptive if (lane.protect or lane.prod) else Risk.safe,
            reason="deploy: " + "; ".join(reasons),
            params={
                "service": seen.service_ref,
                "config_hash": config_hash,
                "timeout_seconds": lane.deploy_timeout_seconds,
                "health_checks": _health_checks(lane),
                "health_failures": 0,
            },
        )
    )


def _health_checks(lane: ProductLane) -> list[dict[str, Any]]:
    return [
        {"url": c.url, "expect_status": c.expect_status, "timeout_seconds": c.timeout_seconds}
        for c in lane.health_checks
    ]


def _health_rule(seen: _Lane, config_hash: str, result: LaneDiff) -> None:
    """The running configuration is the desired one, but its health checks failed: check
    them again (the lane's backoff decides when), and never redeploy the same configuration."""
    health = seen.facts.health
    if not health or health.get("ok") or health.get("config_hash") != config_hash:
        return
    if not seen.desired.health_checks:
        return
    result.actions.append(
        ProposedAction(
            key="check_health",
            op=Op.check_health,
            target=seen.target,
            risk=Risk.safe,
            reason=(
                f"health check {health.get('check')} failed {health.get('failures', 1)} "
                f"time(s) ({health.get('reason')}); checking again without redeploying"
            ),
            params={
                "service": seen.service_ref,
                "config_hash": config_hash,
                "health_checks": _health_checks(seen.desired),
                "health_failures": int(health.get("failures", 1)),
            },
        )
    )


_RULES: tuple[_Rule, ...] = (
    _project_rule,
    _environment_rule,
    _service_rule,
    _image_rule,
    _compose_file_rule,
    _replicas_rule,
    _env_rule,
    _domains_rule,
)


def _safe_action(
    op: Op, target: str, reason: str, change: tuple[str, Any, Any], params: dict[str, Any]
) -> ProposedAction:
    """A safe action that writes one thing: a create, or one field of the service."""
    field, before, after = change
    return ProposedAction(
        key=op.value,
        op=op,
        target=target,
        reason=reason,
        changes=[Change(field=field, before=before, after=after)],
        params=params,
    )


def _env_changes(
    lane: ProductLane,
    service: ObservedService | None,
    owned_keys: set[str],
    plain_keys: set[str],
    secrets: SecretFacts,
) -> list[Change]:
    observed = parse_env(service.env_text) if service else {}
    changes: list[Change] = []
    for key, value in sorted(lane.env.items()):
        if observed.get(key) != value:
            before = _shown_before(lane, plain_keys, secrets.salt, key, observed.get(key))
            changes.append(Change(field=f"env.{key}", before=before, after=value))
    for key, desired_fp in sorted(secrets.desired.items()):
        current = observed.get(key)
        current_fp = secret_fingerprint(secrets.salt, current) if current is not None else None
        if current_fp != desired_fp:
            changes.append(
                Change(field=f"env.{key}", before=current_fp, after=desired_fp, secret=True)
            )
    for key in sorted(owned_keys):
        if key not in lane.env and key not in lane.secrets and key in observed:
            changes.append(
                Change(
                    field=f"env.{key}",
                    before=secret_fingerprint(secrets.salt, observed[key]),
                    after=None,
                    secret=True,
                )
            )
    return changes


def _shown_before(
    lane: ProductLane, plain_keys: set[str], salt: str, key: str, value: str | None
) -> str | None:
    """A value read from Dokploy is shown in clear only if Setpoint wrote it as plain env."""
    if value is None or key in lane.secrets:
        return None  # a key with a secret source: no 'before' at all, whatever was stored
    if key in plain_keys and key in lane.env and not looks_like_secret(key, value):
        return value
    return secret_fingerprint(salt, value)


def _domain_actions(
    lane: ProductLane,
    service: ObservedService | None,
    service_ref: dict[str, Any],
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
                params={
                    "service": service_ref,
                    "domain_id": have.domain_id if have else None,
                    "host": want.host,
                    "path": want.path,
                    "port": want.port,
                    "https": want.https,
                    "service_name": want.service,
                },
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
                params={"domain_id": have.domain_id},
            )
        )
    return changed


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


def _short(text: str | None) -> str | None:
    """Compose files are long: the change names them by digest and shows a masked diff;
    the full text lives in params."""
    if text is None:
        return None
    return (
        f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]} ({len(text.splitlines())} lines)"
    )
