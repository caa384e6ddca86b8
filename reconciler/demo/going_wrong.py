"""`setpoint demo`, when a change goes wrong: a converged lane starts failing its health
check. The next scheduled pass past its health interval shows it Degraded with the check's
answer, the operator's signed webhook (a loopback receiver here) hears of it once, and
still once after three more passes; when the check passes again the lane recovers."""

from __future__ import annotations

import dataclasses
import json
import secrets

import httpx
from pydantic import SecretStr
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from providers.notify.sinks import SIGNATURE_HEADER, sign
from reconciler.demo.loopback import serve
from reconciler.health import HealthResult, check_http
from reconciler.kinds import health_probe_of, with_health_probe
from reconciler.loop.passes import reconcile_pass
from reconciler.presentation.lane_detail import render_lane_detail
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, ShiftedClock

LANE = "product:shop/testing"
HOST = "testing.shop.example.com"


class _Receiver:
    """Stands in for the operator's alerting: keeps each signed message it is sent."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.items: list[dict[str, str]] = []

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        if request.headers.get(SIGNATURE_HEADER) != sign(self.key, body):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        self.items.extend(json.loads(body)["items"])
        return JSONResponse({"ok": True})


def _unhealthy_host(runtime: Runtime, failing: set[str]) -> Runtime:
    """The runtime's health checks, but the containers behind `failing` answer 503."""
    broken = httpx.ASGITransport(
        app=Starlette(routes=[Route("/{p:path}", lambda _: PlainTextResponse("down", 503))])
    )
    healthy = health_probe_of(runtime)

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async def check(url: str, expect_status: int, timeout: float) -> HealthResult:
        host = httpx.URL(url).host
        if host not in failing:
            return await healthy(url, expect_status, timeout)
        return await check_http(
            url,
            expect_status=expect_status,
            timeout=timeout,
            allow_hosts=[host],
            resolver=resolver,
            transport=broken,
        )

    return dataclasses.replace(runtime, providers=with_health_probe(runtime.providers, check))


async def demo_going_wrong(console: Console, runtime: Runtime) -> bool:
    key = secrets.token_urlsafe(24)
    receiver = _Receiver(key)
    clock = ShiftedClock()
    failing: set[str] = set()
    with serve(receiver.app()) as hooks:
        settings = runtime.settings.model_copy(
            update={
                "notify_sinks": {"demo-hook": SecretStr(f"signed+{hooks}/hook")},
                "notify_webhook_secret": SecretStr(key),
            }
        )
        watched = _unhealthy_host(
            dataclasses.replace(runtime, settings=settings, clock=clock, actor="demo-scheduler"),
            failing,
        )
        interval = settings.health_watch_interval_seconds
        console.print(f"{LANE} starts answering 503; {interval:g} s later a pass checks it")
        failing.add(HOST)
        clock.offset += interval
        report = await reconcile_pass(watched)
        degraded = any(r.lane == LANE and r.outcome == "degraded" for r in report.lanes)
        row = next(r for r in all_statuses(runtime.database) if r.lane == LANE)
        render_lane_detail(console, runtime.database, row)
        for _ in range(3):
            clock.offset += interval
            await reconcile_pass(watched)
        told = [i for i in receiver.items if i["lane"] == LANE]
        for item in told:
            console.print(f"webhook received (signed): {item['title']}: {item['body']}")
        console.print(f"{len(told)} notification(s) about {LANE} after four passes")
        failing.clear()
        clock.offset += interval
        recovered = await reconcile_pass(watched)
    healed = any(r.lane == LANE and r.outcome == "converged" for r in recovered.lanes)
    console.print(f"the check passes again: {LANE} {'Ready' if healed else 'still Degraded'}")
    return degraded and len(told) == 1 and healed
