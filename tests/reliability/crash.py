"""Crash points: SIGKILL a real `setpoint apply` at an action boundary, then let it recover.

The fleet (`fleets.crash_fleet`) is new, so its plan is all creates, config writes, domains
and deploys, about fifty actions over eight lanes applied side by side. The emulator is
served on loopback (uvicorn) and answers every call a little late, so that an action's
Dokploy call is in flight most of the time. The test starts `setpoint apply PLAN` as a
child process, polls the audit table until the k-th `action_intent` record of that plan
is committed, and kills the child with SIGKILL at once: boundary k is "action k has been
announced and its call is on the wire". The emulator finishes that call anyway (the answer
goes nowhere), which is the worst moment to die: the object exists, and Setpoint never
heard of it. What was durable at the kill (intents and results committed) is counted again
once the child is dead and reported with each point.

Recovery is what an operator would do next, with no manual step in between: plan, apply,
plan, in this process. It must converge with no blocker and no duplicate, the killed plan
must read `interrupted`, no lease may be left and the audit chain must verify.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.requests import ClientDisconnect

from desired_state.loader import load_text
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator, create_app
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan
from reconciler.demo.loopback import serve
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.ops import Op
from reconciler.records import plan_store
from reconciler.records.audit import AuditEvent, AuditRecord
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.records.plan_store import PlanStatus
from reconciler.runtime import Runtime
from reconciler.settings import Settings
from tests.reliability import checks, fleets

API_KEY = "crash-reliability-key"
LATENCY = 0.02  # seconds added to every Dokploy answer while the child applies
BUILD_SECONDS = 0.05
POLL_SECONDS = 0.05  # deployment polls, in the child and here
RECOVERY_ROUNDS = 3
SEQUENTIAL, PARALLEL = 1, 8  # the child's apply_concurrency (8 is the default)
BOUNDARY_TIMEOUT = 60.0


class CrashSetupFailed(RuntimeError):
    """The child never reached the boundary: the scenario, not the recovery, failed."""


@dataclass(frozen=True)
class CrashResult:
    concurrency: int  # the child's apply_concurrency: 1 walks the plan one action at a time
    boundary: int  # killed once this many action_intent records were committed
    actions: int  # in the killed plan
    intents: int  # action_intent records of the killed plan, counted after the kill
    results: int  # action_result and action_skipped records of it, counted after the kill
    recovered: bool
    rounds: int  # applies after the kill until a plan was empty
    reclaimed: int  # reclaim_service actions the recovery planned
    seconds: float  # from the kill to an empty plan
    duplicates: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.recovered and not self.problems


@dataclass
class _Recovery:
    converged: bool = False
    rounds: int = 0
    reclaimed: int = 0
    problems: list[str] = field(default_factory=list)


async def _healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
    return HealthResult(ok=True, url=url, status=expect_status, reason="not probed", elapsed_ms=0.0)


@dataclass(frozen=True)
class _Scene:
    engine: Engine
    database_url: str
    base_url: str  # the emulator on loopback
    emulator: Emulator
    workdir: Path

    def runtime(self, client: DokployClient) -> Runtime:
        settings = Settings(database_url=self.database_url, deploy_poll_seconds=POLL_SECONDS)
        return Runtime(
            engine=self.engine,
            settings=settings,
            providers={"dokploy": client},
            kinds=all_kinds,
            actor="reliability",
            health_check=_healthy,
        )


def _progress(engine: Engine, plan_id: str) -> tuple[int, int]:
    """(intents, results) committed for the plan so far."""
    query = (
        sa.select(AuditRecord.event, sa.func.count())  # type: ignore[call-overload]
        .where(AuditRecord.plan_id == plan_id)
        .group_by(AuditRecord.event)
    )
    with engine.connect() as connection:
        counts = dict(connection.execute(query).all())
    finished = counts.get(AuditEvent.action_result, 0) + counts.get(AuditEvent.action_skipped, 0)
    return counts.get(AuditEvent.action_intent, 0), finished


def _start_apply(
    scene: _Scene, plan_id: str, concurrency: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SETPOINT_DATABASE_URL": scene.database_url,
        "SETPOINT_DOKPLOY_URL": scene.base_url,
        "SETPOINT_APPLY_CONCURRENCY": str(concurrency),
        "SETPOINT_DOKPLOY_API_KEY": API_KEY,
        "SETPOINT_DEPLOY_POLL_SECONDS": str(POLL_SECONDS),
        "SETPOINT_ACTOR": "reliability-child",
    }
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 -- our own interpreter, fixed argv
            [sys.executable, "-c", "from reconciler.cli.app import main; main()", "apply", plan_id],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _kill_at(
    child: subprocess.Popen[bytes], engine: Engine, plan_id: str, boundary: int, log: Path
) -> None:
    """SIGKILL `child` as soon as the plan's `boundary`-th intent is committed."""
    deadline = time.monotonic() + BOUNDARY_TIMEOUT
    try:
        while _progress(engine, plan_id)[0] < boundary:
            if child.poll() is not None or time.monotonic() > deadline:
                raise CrashSetupFailed(
                    f"apply ended or stalled before intent {boundary}: {log.read_text()[-2000:]}"
                )
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None and child.returncode is None:
            child.kill()
        child.wait(timeout=30)


async def _recover(runtime: Runtime) -> _Recovery:
    """Plan and apply until a plan is empty, as an operator would after the crash."""
    recovery = _Recovery()
    for applied in range(RECOVERY_ROUNDS + 1):
        plan = await compute_plan(runtime)
        recovery.reclaimed += sum(1 for a in plan.actions if a.op == Op.reclaim_service)
        if plan.blockers:
            blockers = "; ".join(f"{b.type.value}: {b.message}" for b in plan.blockers)
            recovery.problems.append(f"plan {applied + 1} after the kill is blocked: {blockers}")
        if not plan.actions and not plan.blockers:
            recovery.converged, recovery.rounds = True, applied
            return recovery
        if applied < RECOVERY_ROUNDS:
            await _apply(runtime, plan, recovery)
    recovery.rounds = RECOVERY_ROUNDS
    recovery.problems.append(f"not converged after {RECOVERY_ROUNDS} rounds")
    return recovery


async def _apply(runtime: Runtime, plan: Plan, recovery: _Recovery) -> None:
    result = await apply_plan(runtime, plan.plan_id)
    if not result.ok:
        failed = [f"{r.action_id} {r.op}: {r.message}" for r in result.actions if r.result != "ok"]
        recovery.problems.append(f"an apply after the kill: {result.status} {failed}")


async def _store_and_plan(runtime: Runtime) -> Plan:
    with session_scope(runtime.engine) as session:
        apply_documents(session, load_text(fleets.crash_fleet(), "fleet.yaml"), prune=True)
    plan = await compute_plan(runtime)
    if plan.blockers or not plan.actions:
        raise CrashSetupFailed(f"the fleet's first plan is not a clean one: {plan.blockers}")
    return plan


def _after_checks(engine: Engine, emulator: Emulator, plan_id: str) -> list[str]:
    state = emulator.state
    problems = [
        *checks.duplicates(state),
        *checks.lanes_have_services(engine, state, fleets.crash_lanes()),
        *checks.registry_matches(engine, state),
        *checks.no_lease_left(engine),
        *checks.chain_verifies(engine),
    ]
    status = plan_store.load(engine, plan_id)[1]
    if status is not PlanStatus.interrupted:
        problems.append(f"the killed plan is {status.value}, not interrupted")
    return problems


class _KilledClientNoise(logging.Filter):
    """Uvicorn logs a traceback when the killed child leaves mid-request; that is the point
    of the test, not an emulator error. Anything else still gets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ClientDisconnect)


def run_crash_point(
    database_url: str, boundary: int, workdir: Path, *, concurrency: int = PARALLEL
) -> CrashResult:
    """Kill `setpoint apply` at `boundary` on an empty database, then recover and check."""
    engine = make_engine(database_url)
    upgrade(engine)
    app = create_app(api_key=API_KEY, seed=31, build_seconds=BUILD_SECONDS)
    noise = _KilledClientNoise()
    logging.getLogger("uvicorn.error").addFilter(noise)
    try:
        with serve(app) as base_url:
            scene = _Scene(engine, database_url, base_url, app.state.emulator, workdir)
            return anyio.run(_crash_and_recover, scene, boundary, concurrency)
    finally:
        logging.getLogger("uvicorn.error").removeFilter(noise)
        engine.dispose()


async def _crash_and_recover(scene: _Scene, boundary: int, concurrency: int) -> CrashResult:
    engine, emulator = scene.engine, scene.emulator
    async with DokployClient(scene.base_url, API_KEY, timeout=10.0) as client:
        runtime = scene.runtime(client)
        plan = await _store_and_plan(runtime)
        emulator.faults.latency(LATENCY)
        log = scene.workdir / f"apply-{concurrency}-{boundary}.log"
        child = _start_apply(scene, plan.plan_id, concurrency, log)
        await anyio.to_thread.run_sync(_kill_at, child, engine, plan.plan_id, boundary, log)
        killed_at = time.monotonic()
        intents, results = _progress(engine, plan.plan_id)
        emulator.faults.reset()
        recovery = await _recover(runtime)
        seconds = time.monotonic() - killed_at
    problems = [*recovery.problems, *_after_checks(engine, emulator, plan.plan_id)]
    return CrashResult(
        concurrency=concurrency,
        boundary=boundary,
        actions=len(plan.actions),
        intents=intents,
        results=results,
        recovered=recovery.converged,
        rounds=recovery.rounds,
        reclaimed=recovery.reclaimed,
        seconds=seconds,
        duplicates=len(checks.duplicates(emulator.state)),
        problems=tuple(problems),
    )


def plan_size() -> int:
    """How many actions the crash fleet's first plan has (in process, scratch database)."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'size.db'}"
        engine = make_engine(url)
        upgrade(engine)
        app = create_app(api_key=API_KEY, seed=31, build_seconds=BUILD_SECONDS)
        scene = _Scene(engine, url, "http://dokploy.size", app.state.emulator, Path(directory))

        async def size() -> int:
            transport = httpx.ASGITransport(app=app)
            async with DokployClient(scene.base_url, API_KEY, transport=transport) as client:
                return len((await _store_and_plan(scene.runtime(client))).actions)

        try:
            return anyio.run(size)
        finally:
            engine.dispose()


def boundaries(actions: int, *, full: bool, offset: int = 0) -> list[tuple[int, int]]:
    """(concurrency, boundary) points. Full: one action at a time, killed at every boundary
    1..N, each exact; and the parallel apply at every fourth boundary, where several lanes'
    actions are in flight at the kill. Reduced (CI): two points per backend, `offset` 0 on
    SQLite and 1 on PostgreSQL: one at a time, the first action and the tenth; in parallel,
    the middle one and the last one."""
    if full:
        sequential = [(SEQUENTIAL, k) for k in range(1, actions + 1)]
        parallel = [(PARALLEL, k) for k in range(1, actions + 1, 4)]
        return [*sequential, *parallel]
    middle = max(1, actions // 2)
    reduced = [(SEQUENTIAL, 1), (PARALLEL, middle), (SEQUENTIAL, 10), (PARALLEL, actions)]
    return reduced[2 * offset : 2 * offset + 2]
