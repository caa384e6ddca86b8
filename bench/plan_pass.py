"""Benchmark: one plan pass over a fleet of N products (2 lanes each) against the emulator.

Measures what an operator pays per scheduled pass once the fleet has converged: wall time,
Dokploy requests (the observer aims for 1 listing + 1 detail read per owned service), and
peak Python memory. The first apply's requests, per procedure, are printed too: the cost of
bringing up a fleet. The emulator runs in process (httpx ASGI transport), so the numbers
are the engine's and the emulator's CPU cost without network latency.

    uv run python bench/plan_pass.py --products 50

Over real HTTP with latency, against lower bounds, and at fleet sizes up to 10,000 lanes:
bench/fleet.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import anyio
import httpx
from fleet import fleet_yaml  # bench/fleet.py, beside this file

from desired_state.loader import load_text
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import create_app
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.path.rsplit("/", 1)[-1]] += 1
        return await self.inner.handle_async_request(request)


async def healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
    return HealthResult(ok=True, url=url, status=200, reason="bench", elapsed_ms=0.0)


async def run(products: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        with session_scope(engine) as session:
            apply_documents(
                session, load_text(fleet_yaml(products), "bench.yaml"), prune=False, now=utcnow()
            )
        app = create_app(api_key="bench", seed=1, build_seconds=0.0)
        transport = CountingTransport(httpx.ASGITransport(app=app))
        async with DokployClient("http://dokploy.bench", "bench", transport=transport) as client:
            runtime = Runtime(
                database=engine,
                settings=Settings(deploy_poll_seconds=0.01),
                providers={"dokploy": client, HEALTH: HealthChecks(healthy)},
                kinds=all_kinds,
                actor="bench",
            )
            started = time.perf_counter()
            first = await compute_plan(runtime)
            first_plan_s = time.perf_counter() - started
            transport.calls.clear()
            started = time.perf_counter()
            result = await apply_plan(runtime, first.plan_id)
            apply_s = time.perf_counter() - started
            assert result.ok, result
            apply_calls = Counter(transport.calls)
            transport.calls.clear()
            tracemalloc.start()
            started = time.perf_counter()
            steady = await compute_plan(runtime)
            steady_s = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert not steady.actions and not steady.blockers
        lanes = products * 2
        print(f"products={products} lanes={lanes} actions_first_plan={len(first.actions)}")
        print(f"first plan: {first_plan_s:.2f}s  apply: {apply_s:.2f}s")
        applied = sum(apply_calls.values())
        print(
            f"first apply: {applied} Dokploy requests ({applied / lanes:.1f} per lane) "
            f"{dict(sorted(apply_calls.items()))}"
        )
        print(
            f"steady-state plan: {steady_s:.3f}s ({steady_s / lanes * 1000:.1f} ms/lane), "
            f"{sum(transport.calls.values())} Dokploy requests {dict(transport.calls)}, "
            f"peak traced memory {peak / 1e6:.1f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=50)
    anyio.run(run, parser.parse_args().products)


if __name__ == "__main__":
    main()
