"""A replica killed mid-pass (SIGKILL: no clean-up at all) loses its claims and leases, and
another replica on the same host finishes its lanes at once (it sees the dead process is
gone; it does not wait for the claims to lapse), creating nothing twice, and deploying what
the dead replica asked for and Dokploy never received once its wait for it is over."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator, create_app
from reconciler.demo.loopback import serve
from reconciler.records import leases, plan_store
from reconciler.records.database import session_scope
from reconciler.records.plan_store import PlanStatus
from reconciler.records.work_queue import queued
from tests.loop.replicas import (
    API_KEY,
    Replica,
    duplicates,
    fleet_yaml,
    replica_settings,
    setpoint_run_process,
    store_fleet_text,
)
from tests.support.cli import Invoke

PRODUCTS = 10
SHORT = {"loop_claim_hold_seconds": 2.0, "lease_ttl_seconds": 2.0}
# A deploy the killed replica announced but never got to Dokploy (its intent is written
# just before the call) is awaited as queued for three timeouts, then asked for again.
DEPLOY_TIMEOUT = 4.0


@pytest.fixture
def served() -> Iterator[tuple[str, Emulator]]:
    app = create_app(api_key=API_KEY, seed=4, build_seconds=0.01)
    with serve(app) as base:
        yield base, app.state.emulator


def _wait(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


# The dead replica's claims and leases would hold for ten minutes: taken at once, or not at all.
DOOMED_HOLD = {"loop_claim_hold_seconds": "600", "lease_ttl_seconds": "600"}


def test_a_killed_replicas_lanes_are_finished_by_another_on_its_host_at_once(
    engine: Engine, database_url: str, served: tuple[str, Emulator]
) -> None:
    base, emulator = served
    store_fleet_text(engine, fleet_yaml(PRODUCTS, DEPLOY_TIMEOUT))
    lanes = 2 * PRODUCTS
    emulator.faults.latency(0.2, "application.deploy")  # a slow pass, to kill it midway
    doomed = setpoint_run_process(database_url, base, **DOOMED_HOLD)
    try:
        assert _wait(lambda: len(emulator.state.applications) >= 3, 30), "the pass never began"
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    with session_scope(engine) as session:
        stranded = {row.lane for row in queued(session) if row.claimed_by}
    assert stranded, "the replica died holding claims"
    assert len(emulator.state.applications) < lanes, "it died mid-pass"
    emulator.faults.latency(0.0, "application.deploy")

    survivor = Replica("survivor", replica_settings(database_url, **SHORT), base)
    started = time.monotonic()
    survivor.start()
    try:

        def converged() -> bool:
            with session_scope(engine) as session:
                rows = queued(session)
            return not rows and len(emulator.state.applications) == lanes

        assert _wait(converged, 60), "the survivor did not finish the fleet"
    finally:
        survivor.stop()
    assert survivor.error is None
    assert duplicates(emulator) == {}, "a create reached Dokploy twice"
    assert stranded <= {i.lane for i in survivor.work_log}, "the dead replica's lanes were taken"
    first_take = min(i.started for i in survivor.work_log if i.lane in stranded)
    assert first_take - started < 60, "its claims were taken over before they lapsed"
    assert plan_store.with_status(engine, PlanStatus.applying) == []


def test_a_second_setpoint_run_on_one_sqlite_file_says_so_in_one_line_and_exits_1(
    engine: Engine,
    database_url: str,
    served: tuple[str, Emulator],
    setpoint: Invoke,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL replicas share the loop")
    base, _ = served
    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", base)
    monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", API_KEY)
    first = setpoint_run_process(database_url, base)
    try:
        assert _wait(lambda: bool(leases.all_leases(engine)), 30), "the first loop never began"
        second = setpoint("run", "--once")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(20)
    assert second.exit_code == 1
    assert second.stderr.count("\n") == 1, second.stderr
    assert "only one process may run the loop on SQLite" in second.stderr
    assert first.returncode == 0, "SIGTERM stops the loop cleanly"
    assert leases.all_leases(engine) == [], "and it gave its lease back"


def test_sigterm_mid_apply_records_it_interrupted_and_gives_everything_back(
    engine: Engine, database_url: str, served: tuple[str, Emulator]
) -> None:
    base, emulator = served
    store_fleet_text(engine, fleet_yaml(2))
    emulator.faults.stuck_deployment()  # the deploys never end by themselves
    process = setpoint_run_process(database_url, base, loop_shutdown_grace_seconds="0.5")
    try:
        applying = lambda: bool(plan_store.with_status(engine, PlanStatus.applying))  # noqa: E731
        assert _wait(applying, 30), "the apply never began"
        assert _wait(lambda: bool(emulator.state.applications), 30)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert process.returncode == 0
    assert plan_store.with_status(engine, PlanStatus.applying) == [], "nothing left applying"
    assert plan_store.with_status(engine, PlanStatus.interrupted), "recorded as interrupted"
    assert leases.all_leases(engine) == [], "leases given back"
    with session_scope(engine) as session:
        assert all(row.claimed_by is None for row in queued(session)), "claims given back"
