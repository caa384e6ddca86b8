"""The health probe Setpoint runs (`reconciler.health.check_http`, its SSRF rules and all),
with its requests answered by an ASGI app in process: every host resolves to loopback and is
allowed, so a check reaches the stand-in workload or the emulator's routed domains."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from reconciler.health import HealthResult, check_http
from reconciler.kinds.product.health import HealthProbe


async def _loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def probe_answered_by(app: ASGIApp) -> HealthProbe:
    transport = httpx.ASGITransport(app=app)

    async def probe(url: str, expect_status: int, timeout: float) -> HealthResult:
        return await check_http(
            url,
            expect_status=expect_status,
            timeout=timeout,
            allow_hosts=[httpx.URL(url).host],
            resolver=_loopback,
            transport=transport,
        )

    return probe
