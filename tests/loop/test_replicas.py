"""Two replicas on PostgreSQL reconcile a fleet together (Invariant 10): no lane is ever
worked by both at once, and Dokploy sees no duplicate mutation."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator, create_app
from reconciler.demo.loopback import serve
from reconciler.records import plan_store
from reconciler.records.database import session_scope
from reconciler.records.plan_store import PlanStatus
from reconciler.records.work_queue import queued
from tests.loop.replicas import (
    API_KEY,
    Replica,
    duplicates,
    fleet_yaml,
    overlaps,
    replica_settings,
    store_fleet_text,
)

# 80 lanes in CI (about 21 s on 2 cores); SETPOINT_LOOP_REPLICA_PRODUCTS=100 for the issue's
# 200. Deploys now queue one build at a time per Dokploy server, as the real one does, so a
# bigger fleet measures the build queue more than the replicas sharing it.
PRODUCTS = int(os.environ.get("SETPOINT_LOOP_REPLICA_PRODUCTS", "40"))


@pytest.fixture
def served() -> Iterator[tuple[str, Emulator]]:
    app = create_app(api_key=API_KEY, seed=3, build_seconds=0.01)
    with serve(app) as base:
        yield base, app.state.emulator


def _converged(engine: Engine, emulator: Emulator, lanes: int) -> bool:
    with session_scope(engine) as session:
        rows = queued(session)
    return not rows and len(emulator.state.applications) == lanes


@pytest.mark.postgres
def test_two_replicas_share_a_fleet_without_working_a_lane_twice_at_once(
    engine: Engine, database_url: str, served: tuple[str, Emulator]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("replicas share the loop on PostgreSQL; SQLite runs one loop")
    base, emulator = served
    store_fleet_text(engine, fleet_yaml(PRODUCTS))
    lanes = 2 * PRODUCTS
    replicas = [Replica(name, replica_settings(database_url), base) for name in ("a", "b")]
    started = time.monotonic()
    for replica in replicas:
        replica.start()
    try:
        deadline = time.monotonic() + 90
        while not _converged(engine, emulator, lanes) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for replica in replicas:
            replica.stop()
    elapsed = time.monotonic() - started
    assert [r.error for r in replicas] == [None, None]
    assert _converged(engine, emulator, lanes), f"not converged after {elapsed:.1f}s"
    intervals = [i for r in replicas for i in r.work_log]
    assert overlaps(intervals) == [], "a lane was worked by two workers at once"
    assert duplicates(emulator) == {}, "a create reached Dokploy twice"
    assert len({p["name"] for p in emulator.state.projects.values()}) == PRODUCTS
    worked_by = {r.name: {i.lane for i in r.work_log} for r in replicas}
    assert worked_by["a"] and worked_by["b"], "both replicas took lanes"
    assert plan_store.with_status(engine, PlanStatus.applying) == []
    outcomes = dict(Counter(i.outcome for i in intervals))
    print(f"{lanes} lanes on 2 replicas converged in {elapsed:.1f}s: {outcomes}")
