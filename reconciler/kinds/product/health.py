"""The product kind's health checks: what it offers to verify a deploy, and to look again.

Health checks are the product kind's, not the runtime's: a kind with no services to check
(a runner pool, a kind in a test) never sees them. A deployment hands the product kind a
probe as the provider named `health` (`HealthChecks`); without one the kind checks as the
settings say (`health_probe`: to the domains themselves, or all through
`SETPOINT_HEALTH_ROUTE_VIA`). Every target is vetted first (`reconciler/health.py`).

`run_health_checks(runtime, checks)` is the one call that runs a lane's checks with the
deployment's probe: the deploy verification uses the same probe, so a watcher that looks
again later sees what a deploy would have seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from reconciler.health import HealthResult, check_http
from reconciler.kinds.product.lanes import DesiredHealthCheck
from reconciler.runtime import Runtime

HEALTH = "health"  # the provider name a deployment's probe is held under

# (url, expected status, timeout in seconds) -> the result; failures are results
HealthProbe = Callable[[str, int, float], Awaitable[HealthResult]]


@dataclass(frozen=True)
class HealthChecks:
    """The probe a deployment (or a test) gives the product kind, as provider `health`."""

    probe: HealthProbe


def health_checks_of(runtime: Runtime) -> HealthProbe:
    """The runtime's probe (provider `health`), else the one the settings describe."""
    if runtime.has_provider(HEALTH):
        return runtime.provider(HEALTH, HealthChecks).probe
    settings = runtime.settings
    return health_probe(settings.health_allow_hosts, settings.health_route_via)


async def run_health_checks(
    runtime: Runtime, checks: Sequence[DesiredHealthCheck]
) -> list[HealthResult]:
    """Each of a lane's checks (`ProductLane.health_checks`), in order, with the probe a
    deploy is verified with; never raises for a failing target."""
    probe = health_checks_of(runtime)
    return [await probe(c.url, c.expect_status, c.timeout_seconds) for c in checks]


def health_probe(allow_hosts: Sequence[str], route_via: str | None) -> HealthProbe:
    """Health checks as configured: to the domains themselves, or all to `route_via`."""
    allow = tuple(allow_hosts)
    if route_via is None:

        async def direct(url: str, expect_status: int, timeout: float) -> HealthResult:
            return await check_http(
                url, expect_status=expect_status, timeout=timeout, allow_hosts=allow
            )

        return direct
    via = httpx.URL(route_via)

    async def routed(url: str, expect_status: int, timeout: float) -> HealthResult:
        async def to_via(host: str, port: int) -> list[str]:
            return [via.host]

        return await check_http(
            url,
            expect_status=expect_status,
            timeout=timeout,
            allow_hosts=(*allow, httpx.URL(url).host),
            resolver=to_via,
            transport=RouteVia(via),
        )

    return routed


class RouteVia(httpx.AsyncHTTPTransport):
    """Sends each request to one plain-HTTP address, keeping its Host header."""

    def __init__(self, via: httpx.URL) -> None:
        super().__init__()
        self._via = via

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self._via.host, port=self._via.port)
        request.extensions.pop("sni_hostname", None)
        return await super().handle_async_request(request)
