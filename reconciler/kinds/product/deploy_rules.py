"""Deploys and health checks: whether the running service must be deployed again, or only
checked, after the other rules."""

from __future__ import annotations

from typing import Any

from reconciler.core.plans import Risk
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.rule_input import SeenLane, desired_config_hash


def deploy_rule(seen: SeenLane, reasons: list[str], result: LaneDiff) -> None:
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
                "source_sha": lane.source_sha,
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


def _health_rule(seen: SeenLane, config_hash: str, result: LaneDiff) -> None:
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
