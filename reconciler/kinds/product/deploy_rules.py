"""Deploys and health checks: whether the running service must be deployed again, or only
checked, after the other rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.core.plans import Blocker, Change, Risk
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.params import (
    AwaitedDeploy,
    CheckHealth,
    Deploy,
    HealthCheck,
    unknown_refs,
)
from reconciler.kinds.product.reasons import DEPLOY_FAILED
from reconciler.kinds.product.rule_input import SeenLane, deploy_title, desired_config_hash

# A deploy asked for that has not started building is awaited this many of the lane's deploy
# timeouts from when it was asked for; after that it is taken for lost and asked for again.
ASKED_WINDOW_TIMEOUTS = 3
# Dokploy's clock and ours may differ a little (as for reclaims in observe.py).
CLOCK_SKEW_SECONDS = 60.0


@dataclass(frozen=True)
class _InFlight:
    """What the lane's last deploy of the desired configuration says about this one:
    await it (`awaiting`), wait out a failure's backoff (`reason` only), or deploy (again)."""

    reason: str
    awaiting: AwaitedDeploy | None = None
    wait: bool = False


def deploy_rule(seen: SeenLane, reasons: list[str], result: LaneDiff) -> None:
    lane, service = seen.desired, seen.service
    config_hash = desired_config_hash(lane, seen.secrets)
    saves = bool(reasons)  # this plan changes the configuration: deploy it, whatever ran
    if service is None:
        reasons.insert(0, "new service")
    elif not reasons:
        owed = _owed(seen, config_hash)
        if owed is None:
            _health_rule(seen, config_hash, result)
            return
        reasons.append(owed)
    found = None if saves or service is None else _in_flight(seen, config_hash)
    if found is not None and found.wait:
        result.blockers.append(
            Blocker(type=DEPLOY_FAILED.code, lane=lane.lane, message=found.reason)
        )
        return
    if found is not None:
        reasons[:] = [found.reason]
    failed = seen.facts.deploy_failed or {}
    result.actions.append(
        ProposedAction(
            key="deploy",
            op=Op.deploy,
            target=seen.target,
            risk=Risk.disruptive if (lane.protect or lane.prod) else Risk.safe,
            reason="deploy: " + "; ".join(reasons),
            changes=[
                Change(
                    field="configuration",
                    before=seen.facts.deployed_config_hash,
                    after=config_hash,
                )
            ],
            params=Deploy(
                service=seen.service_ref,
                server_id=service.server_id if service else seen.observed.server_id,
                config_hash=config_hash,
                source_sha=lane.source_sha,
                timeout_seconds=lane.deploy_timeout_seconds,
                health_checks=_health_checks(lane),
                health_failures=0,
                awaiting=found.awaiting if found is not None else None,
                deploy_failures=(
                    int(failed.get("failures", 0))
                    if failed.get("config_hash") == config_hash
                    else 0
                ),
            ),
            after=unknown_refs(seen.service_ref),
        )
    )


def _owed(seen: SeenLane, config_hash: str) -> str | None:
    """Why the service must be deployed although nothing is saved, if it must."""
    service, facts = seen.service, seen.facts
    assert service is not None
    if service.latest_deployment is None:
        return "never deployed"
    if not seen.observed.owned or facts.deployed_config_hash == config_hash:
        return None
    if facts.deployed_config_hash is None:
        return "no deployment of the current configuration has succeeded yet"
    return "the running deployment predates the current configuration"


def _in_flight(seen: SeenLane, config_hash: str) -> _InFlight | None:
    """A deploy of this configuration already asked for: building, finished unrecorded,
    queued, or failed and backing off. None: nothing of the kind, deploy."""
    service = seen.service
    assert service is not None
    title = deploy_title(seen.desired.lane, config_hash)
    latest = service.latest_deployment_id
    parked = _parked(seen, config_hash)
    if service.latest_deployment_title == title and service.latest_deployment in _LIVE:
        what = _LIVE[str(service.latest_deployment)]
        return _InFlight(
            f"deployment {latest} of this configuration {what}; awaiting it, not deploying again",
            _awaited(parked)
            if parked and parked["deployment_id"] == latest
            else AwaitedDeploy(deployment_id=latest),
        )
    if parked is not None:
        return _InFlight(
            f"deployment {parked['deployment_id']} of this configuration was building when "
            "last looked at; awaiting its end, not deploying again",
            _awaited(parked),
        )
    asked = _asked(seen, config_hash)
    if asked is not None and latest is not None and _answered(seen, asked):
        return _InFlight(
            f"deployment {latest} of this configuration ended {service.latest_deployment} "
            "before it was looked at again; taking its outcome, not deploying again",
            AwaitedDeploy(deployment_id=latest),
        )
    if asked is not None:
        return _InFlight(
            f"the deploy of this configuration asked for at {_when(asked['at'])} waits in "
            "Dokploy's build queue; awaiting it, not asking again",
            AwaitedDeploy(title=title, at=float(asked["at"])),
        )
    return _failed(seen, config_hash)


def _parked(seen: SeenLane, config_hash: str) -> Mapping[str, Any] | None:
    """This configuration's deployment a parked deploy saw building (`deploy_asked` with its
    id), not yet seen to end. Its timeout, not the asked window, bounds the wait for it."""
    asked = seen.facts.deploy_asked
    if not asked or asked.get("config_hash") != config_hash or not asked.get("deployment_id"):
        return None
    return asked


def _awaited(parked: Mapping[str, Any]) -> AwaitedDeploy:
    return AwaitedDeploy(
        deployment_id=str(parked["deployment_id"]),
        at=float(parked["at"]),
        building_since=float(parked["building_since"]),
    )


def _asked(seen: SeenLane, config_hash: str) -> Mapping[str, Any] | None:
    """The newest deploy of this configuration asked for and possibly still queued (no
    deployment shows it yet), within its window: one whose worker stopped waiting for it
    (`deploy_asked`), or one an interrupted apply asked for (its intent, written just before
    the deploy call, is all that is left of it)."""
    window = ASKED_WINDOW_TIMEOUTS * seen.desired.deploy_timeout_seconds
    candidates = [
        *([seen.facts.deploy_asked] if seen.facts.deploy_asked else []),
        *(a for a in seen.observed.interrupted_deploys if not _answered(seen, a)),
    ]
    waiting = [
        a for a in candidates if a.get("config_hash") == config_hash and _since(seen, a) < window
    ]
    return max(waiting, key=lambda a: float(a["at"]), default=None)


def _answered(seen: SeenLane, asked: Mapping[str, Any]) -> bool:
    """An interrupted deploy that Dokploy has since started: the service's newest deployment
    carries its title and began after it was asked for. Not queued, whatever its end."""
    service = seen.service
    if service is None or service.latest_deployment_at is None:
        return False
    if service.latest_deployment_title != deploy_title(seen.desired.lane, asked["config_hash"]):
        return False
    started = datetime.fromisoformat(service.latest_deployment_at.replace("Z", "+00:00"))
    return started.timestamp() >= float(asked["at"]) - CLOCK_SKEW_SECONDS


_LIVE = {"running": "is building", "done": "finished but its outcome was not recorded"}


def _failed(seen: SeenLane, config_hash: str) -> _InFlight | None:
    failed = seen.facts.deploy_failed or {}
    if failed.get("config_hash") != config_hash:
        return None
    said = (
        f"DeployFailed: deployment {failed.get('deployment_id')} of this configuration failed "
        f"at {_when(failed['at'])} ({failed.get('failures', 1)} time(s))"
    )
    retry_at = float(failed.get("retry_at", 0.0))
    if seen.now is not None and seen.now < retry_at:
        return _InFlight(
            f"{said}; deploying it again after {_when(retry_at)} "
            "(a change to the desired configuration deploys at once)",
            wait=True,
        )
    return _InFlight(f"{said}; its backoff is over, deploying it again")


def _since(seen: SeenLane, facts: Mapping[str, Any]) -> float:
    return 0.0 if seen.now is None else seen.now - float(facts.get("at", 0.0))


def _when(at: float) -> str:
    return datetime.fromtimestamp(float(at), UTC).isoformat(timespec="seconds")


def _health_checks(lane: ProductLane) -> list[HealthCheck]:
    return [
        HealthCheck(
            url=c.url,
            expect_status=c.expect_status,
            timeout_seconds=c.timeout_seconds,
            expect_identity=dict(lane.identity) if c.expect_identity else {},
        )
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
            params=CheckHealth(
                service=seen.service_ref,
                config_hash=config_hash,
                health_checks=_health_checks(seen.desired),
                health_failures=int(health.get("failures", 1)),
            ),
        )
    )
