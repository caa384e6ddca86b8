"""Loop settings short enough for tests (backoff and claims in fractions of a second)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import httpx

from reconciler.loop.engine import LoopEngine
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy

FAST = {
    "loop_workers": 2,
    "loop_poll_seconds": 0.05,
    "loop_backoff_base_seconds": 0.2,
    "loop_backoff_cap_seconds": 1.0,
    "loop_claim_hold_seconds": 5.0,
    "loop_shutdown_grace_seconds": 0.2,
}


def fast_engine(
    runtime: Runtime, draw: Callable[[float, float], float] | None = None, **settings: object
) -> LoopEngine:
    """A loop engine on `runtime` with test-sized settings (and any given)."""
    runtime.settings = runtime.settings.model_copy(update={**FAST, **settings})
    if draw is None:
        return LoopEngine(runtime)
    return LoopEngine(runtime, draw=draw)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Poll `check` until it holds; fails the test after `timeout` seconds."""
    with anyio.fail_after(timeout):
        while True:
            if await check():
                return
            await anyio.sleep(0.02)


def count_calls(runtime: Runtime) -> list[str]:
    """The Dokploy procedures the runtime calls from now on, in order."""
    calls: list[str] = []

    async def count(request: httpx.Request) -> None:
        calls.append(request.url.path.rsplit("/", 1)[-1])

    dokploy(runtime)._http.event_hooks["request"].append(count)
    return calls
