"""Crash points: SIGKILL a real `setpoint apply` at an action boundary, then let it recover.

The fleet (`fleets.crash_fleet`) is new, so its plan is all creates, config writes, domains
and deploys: 48 actions over eight lanes. Every action makes exactly one write to Dokploy
(a create, a save, a deploy), besides its reads. The emulator is served on loopback
(uvicorn); the test starts `setpoint apply PLAN` as a child process and kills it with
SIGKILL at boundary k, at one of two moments:

- `announced`: as soon as the k-th `action_intent` record of the plan is committed (the
  test polls the audit table). Action k is durable as an intent, its first call is on the
  wire: the emulator answers 20 ms late, so the kill lands before the answer.
- `unanswered`: as soon as Dokploy has carried out the k-th write. The emulator does the
  work and then holds the answer until the child is dead, so the object exists (or the
  deploy is queued) and Setpoint never heard of it: the worst moment to die.

With `apply_concurrency=1` boundary k is action k's; in parallel, other lanes' actions are
in flight too. What was durable at the kill (intents and results committed) is counted
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
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col
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
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.kinds.product.ops import Op
from reconciler.records import plan_store
from reconciler.records.audit import AuditRecord
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.records.plan_store import PlanStatus
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings
from tests.reliability import checks, fleets

API_KEY = "crash-reliability-key"
LATENCY = 0.02  # seconds added to every Dokploy answer while the child applies (announced)
BUILD_SECONDS = 0.05
POLL_SECONDS = 0.05  # deployment polls, in the child and here
RECOVERY_ROUNDS = 3
SEQUENTIAL, PARALLEL = 1, 8  # the child's apply_concurrency (8 is the default)
BOUNDARY_TIMEOUT = 60.0


class Moment(StrEnum):
    announced = "announced"  # the k-th intent is committed
    unanswered = "unanswered"  # Dokploy did the k-th write; its answer has not come back


@dataclass(frozen=True)
class Point:
    concurrency: int  # the child's apply_concurrency: 1 walks the plan one action at a time
    moment: Moment
    boundary: int

    @property
    def label(self) -> str:
        mode = "sequential" if self.concurrency == SEQUENTIAL else "parallel"
        return f"{mode}-{self.moment.value}-{self.boundary}"


class CrashSetupFailed(RuntimeError):
    """The child never reached the boundary: the scenario, not the recovery, failed."""


@dataclass(frozen=True)
class CrashResult:
    concurrency: int  # the child's apply_concurrency
    moment: Moment
    boundary: int  # killed at the boundary-th intent or write (see `moment`)
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
            database=self.engine,
            settings=settings,
            providers={"dokploy": client, HEALTH: HealthChecks(_healthy)},
            kinds=all_kinds,
            actor="reliability",
        )


def _progress(engine: Engine, plan_id: str) -> tuple[int, int]:
    """(intents, results) committed for the plan so far."""
    query = (
        sa.select(col(AuditRecord.event), sa.func.count())
        .where(col(AuditRecord.plan_id) == plan_id)
        .group_by(col(AuditRecord.event))
    )
    with engine.connect() as connection:
        counts = dict(connection.execute(query).all())
    finished = counts.get(AuditEvent.action_result, 0) + counts.get(AuditEvent.action_skipped, 0)
    return counts.get(AuditEvent.action_intent, 0), finished


def _start_apply(
    scene: _Scene,
    plan_id: str,
    concurrency: int,
    log: Path,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        **(extra_env or {}),
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


class _HoldWrite:
    """ASGI middleware before the emulator: the `n`-th write (a POST to a procedure) is carried
    out, then its answer is held back until `release`; `done` says the work was done."""

    def __init__(self, app: Any, n: int) -> None:
        self._app, self._n, self._writes = app, n, 0
        self.done, self.release = threading.Event(), threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        write = scope["type"] == "http" and scope["method"] == "POST"
        if write and scope["path"].startswith("/api/"):
            self._writes += 1  # one event loop: no race
            if self._writes == self._n:
                await self._hold(scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _hold(self, scope: Any, receive: Any, send: Any) -> None:
        answer: list[Any] = []

        async def keep(message: Any) -> None:
            answer.append(message)

        await self._app(scope, receive, keep)
        self.done.set()
        await anyio.to_thread.run_sync(self.release.wait)
        for message in answer:  # to nobody: the child is gone
            await send(message)


def _wait_for(
    reached: Callable[[], bool], child: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + BOUNDARY_TIMEOUT
    while not reached():
        if child.poll() is not None or time.monotonic() > deadline:
            raise CrashSetupFailed(
                f"apply ended or stalled before {what}: {log.read_text()[-2000:]}"
            )
        time.sleep(0.002)


def _kill_at(
    child: subprocess.Popen[bytes], reached: Callable[[], bool], what: str, log: Path
) -> None:
    """SIGKILL `child` as soon as `reached()`."""
    try:
        _wait_for(reached, child, what, log)
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
            blockers = "; ".join(f"{b.type}: {b.message}" for b in plan.blockers)
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
    with session_scope(runtime.database) as session:
        apply_documents(
            session, load_text(fleets.crash_fleet(), "fleet.yaml"), prune=True, now=utcnow()
        )
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


def run_crash_point(database_url: str, point: Point, workdir: Path) -> CrashResult:
    """Kill `setpoint apply` at `point` on an empty database, then recover and check."""
    engine = make_engine(database_url)
    upgrade(engine)
    app = create_app(api_key=API_KEY, seed=31, build_seconds=BUILD_SECONDS)
    held = _HoldWrite(app, point.boundary if point.moment is Moment.unanswered else 0)
    noise = _KilledClientNoise()
    logging.getLogger("uvicorn.error").addFilter(noise)
    try:
        with serve(held) as base_url:
            scene = _Scene(engine, database_url, base_url, app.state.emulator, workdir)
            try:
                return anyio.run(_crash_and_recover, scene, point, held)
            finally:
                held.release.set()
    finally:
        logging.getLogger("uvicorn.error").removeFilter(noise)
        engine.dispose()


def _trigger(scene: _Scene, plan_id: str, point: Point, held: _HoldWrite) -> Callable[[], bool]:
    if point.moment is Moment.unanswered:
        return held.done.is_set
    return lambda: _progress(scene.engine, plan_id)[0] >= point.boundary


async def _crash_and_recover(scene: _Scene, point: Point, held: _HoldWrite) -> CrashResult:
    engine, emulator = scene.engine, scene.emulator
    async with DokployClient(scene.base_url, API_KEY, timeout=10.0) as client:
        runtime = scene.runtime(client)
        plan = await _store_and_plan(runtime)
        if point.moment is Moment.announced:
            emulator.faults.latency(LATENCY)
        log = scene.workdir / f"apply-{point.label}.log"
        child = _start_apply(scene, plan.plan_id, point.concurrency, log)
        reached = _trigger(scene, plan.plan_id, point, held)
        what = f"{point.moment.value} {point.boundary}"
        await anyio.to_thread.run_sync(_kill_at, child, reached, what, log)
        killed_at = time.monotonic()
        held.release.set()
        intents, results = _progress(engine, plan.plan_id)
        emulator.faults.reset()
        recovery = await _recover(runtime)
        seconds = time.monotonic() - killed_at
    problems = [*recovery.problems, *_after_checks(engine, emulator, plan.plan_id)]
    return CrashResult(
        concurrency=point.concurrency,
        moment=point.moment,
        boundary=point.boundary,
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


def points(actions: int, *, full: bool, offset: int = 0) -> list[Point]:
    """Full: one action at a time, killed at every boundary 1..N at both moments; and the
    parallel apply at every fourth boundary at both moments, where several lanes' actions
    are in flight at the kill. Reduced (CI): SQLite (offset 0) the first intent one at a
    time and the middle write in parallel; PostgreSQL (offset 1) the tenth write one at a
    time."""
    if full:
        return [
            *(Point(SEQUENTIAL, m, k) for m in Moment for k in range(1, actions + 1)),
            *(Point(PARALLEL, m, k) for m in Moment for k in range(1, actions + 1, 4)),
        ]
    if offset == 0:
        return [
            Point(SEQUENTIAL, Moment.announced, 1),
            Point(PARALLEL, Moment.unanswered, max(1, actions // 2)),
        ]
    return [Point(SEQUENTIAL, Moment.unanswered, min(10, actions))]
