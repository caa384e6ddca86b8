"""A runtime of its own for one Hypothesis example: a migrated database at `url` and a
Dokploy emulator reached in process, with the health checks answered by `health_app`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp

from providers.dokploy.emulator import Emulator
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.settings import Settings
from tests.providers.dokploy.contract import ContractRecorder
from tests.providers.dokploy.fixtures import make_client
from tests.support.health_probes import probe_answered_by


@asynccontextmanager
async def emulated_runtime(
    url: str,
    dokploy_app: Starlette,
    health_app: ASGIApp,
    settings: Settings,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Runtime]:
    engine = make_engine(url)
    upgrade(engine)
    health = probe_answered_by(health_app)
    try:
        async with make_client(dokploy_app, ContractRecorder()) as client:
            yield Runtime(
                database=engine,
                settings=settings,
                providers={"dokploy": client, HEALTH: HealthChecks(health)},
                kinds=all_kinds,
                actor="scheduler:test",
                clock=clock,
            )
    finally:
        engine.dispose()


def time_passes(emulator: Emulator, runtime: Runtime, seconds: float) -> None:
    """`seconds` pass on Dokploy's clock and on the loop's together. A look that came late (a
    loaded machine) set the lane's next look that much later by the loop's clock: moving only
    Dokploy's would end the build while the loop, on an unmoved clock, finds the lane not due."""
    emulator.state.advance(seconds)
    assert isinstance(runtime.clock, ShiftedClock), "the test's runtime needs a ShiftedClock"
    runtime.clock.advance(seconds)
