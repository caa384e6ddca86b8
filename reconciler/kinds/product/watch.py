"""Health that keeps watching: a converged product lane whose deploy passed its health checks
is checked again every interval (`WatchingKind`), one request per check, through the same
SSRF-safe probe as a deploy's checks. The engine records the verdicts and shows a failing lane
Degraded; nothing is deployed or changed because of one."""

from __future__ import annotations

from reconciler.kinds.base import HealthVerdict, HealthWatch
from reconciler.kinds.product.health import health_checks_of
from reconciler.kinds.product.identity import verified_identity
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.observed import ServiceFacts
from reconciler.runtime import Runtime


def health_watch(
    lane: ProductLane | None, facts: ServiceFacts, default_interval: float
) -> HealthWatch | None:
    """Watched: a desired lane with health checks whose deploy of the configuration it runs
    passed them. A lane whose deploy failed its checks is checked by its plan's
    `check_health` action instead (with backoff), and a lane never verified is not watched."""
    if lane is None or not lane.health_checks:
        return None
    health, deployed = facts.health, facts.deployed_config_hash
    if not health or not health.get("ok") or deployed is None:
        return None
    if health.get("config_hash") != deployed:
        return None
    return HealthWatch(interval=lane.health_interval_seconds or default_interval, basis=deployed)


async def check_lane_health(runtime: Runtime, lane: ProductLane) -> HealthVerdict:
    """The lane's checks in order, up to the first that fails."""
    last = HealthVerdict(ok=True, check="", status=None, reason="ok")
    probe = health_checks_of(runtime)
    for check in lane.health_checks:
        result = verified_identity(
            await probe(check.url, check.expect_status, check.timeout_seconds),
            lane.identity if check.expect_identity else {},
        )
        last = HealthVerdict(
            ok=result.ok, check=result.url, status=result.status, reason=result.reason
        )
        if not result.ok:
            break
    return last
