"""Kills during the deploy wait: SIGKILL a real `setpoint apply` while deploys it asked for
are queued or building in Dokploy, then let the next plans and applies recover.

The fleet is crash.py's (eight new application lanes on one Dokploy server, a deploy each),
with builds slow enough (`BUILD_SECONDS`) that the deploy wait is where the child spends its
time. The emulator builds one deployment at a time per server and shows a deployment only
once its build starts, as Dokploy v0.30 does, so a deploy asked for and still queued leaves
no trace in Dokploy that Setpoint could read. The child runs with
SETPOINT_DOKPLOY_DEPLOY_PARALLELISM 1 (the default: one deploy of ours in the server's queue)
or 4 (up to four: one building, three queued), and is killed at deploy k, at one of two
moments:

- `asked`: as soon as Dokploy has queued the k-th deploy (it may still wait its turn);
- `building`: as soon as the k-th deploy's build has started.

Recovery is plan, apply, plan ... in this process until a plan is empty, as an operator (or
the loop) would do. It must converge with no blocker, every check of crash.py must hold, and
no service may have been deployed twice: a deploy in flight at the kill is awaited (by its
title, or by the interrupted apply's intent while it is queued), never asked for again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import anyio

from desired_state.loader import load_text
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import create_app
from providers.dokploy.emulator.state import EmulatorState
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan
from reconciler.demo.loopback import serve
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, utcnow
from tests.reliability import checks, crash, fleets

BUILD_SECONDS = 0.3  # each build; eight of them queue one after another
# The lanes' deployTimeoutSeconds: a deploy asked for by the killed child and never started
# is awaited for three of these (15 s) before it is taken for lost and asked for again.
DEPLOY_TIMEOUT = 5
RECOVERY_DEADLINE = 60.0  # seconds from the kill; past it the point failed
DEPLOYS = len(fleets.crash_lanes())  # one per lane: the fleet is new


class DeployMoment(StrEnum):
    asked = "asked"  # Dokploy has queued the k-th deploy
    building = "building"  # the k-th deploy's build has started


@dataclass(frozen=True)
class DeployKill:
    parallelism: int  # the child's SETPOINT_DOKPLOY_DEPLOY_PARALLELISM
    moment: DeployMoment
    k: int  # the k-th deploy of the plan

    @property
    def label(self) -> str:
        return f"deploys{self.parallelism}-{self.moment.value}-{self.k}"


@dataclass(frozen=True)
class DeployKillResult:
    kill: DeployKill
    queued: int  # deploys Dokploy had queued and not started at the kill
    building: int  # deploys building at the kill
    recovered: bool
    rounds: int  # applies after the kill until a plan was empty
    seconds: float  # from the kill to an empty plan
    deployed_twice: tuple[str, ...]  # services Dokploy was asked to deploy more than once
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.recovered and not self.problems and not self.deployed_twice


@dataclass
class _Recovery:
    converged: bool = False
    rounds: int = 0
    problems: list[str] = field(default_factory=list)


def _builds(state: EmulatorState) -> tuple[int, int, int]:
    """(asked, started, settled) deploys, read from the emulator's thread-shared state."""
    builds = [b for queue in list(state.builds.values()) for b in list(queue)]
    return (
        len(builds),
        sum(1 for b in builds if b.started),
        sum(1 for b in builds if b.settled),
    )


def _trigger(state: EmulatorState, kill: DeployKill) -> Callable[[], bool]:
    index = 0 if kill.moment is DeployMoment.asked else 1
    return lambda: _builds(state)[index] >= kill.k


async def _store_and_plan(runtime: Runtime) -> Plan:
    fleet = fleets.crash_fleet(deploy_timeout=DEPLOY_TIMEOUT)
    with session_scope(runtime.database) as session:
        apply_documents(session, load_text(fleet, "fleet.yaml"), prune=True, now=utcnow())
    plan = await compute_plan(runtime)
    if plan.blockers or not plan.actions:
        raise crash.CrashSetupFailed(f"the fleet's first plan is not a clean one: {plan.blockers}")
    return plan


async def _recover(runtime: Runtime, killed_at: float) -> _Recovery:
    """Plan and apply until a plan is empty. An apply may end `waiting` (a deploy awaited is
    still queued): the next round awaits it again, as the loop's next pass would."""
    recovery = _Recovery()
    while time.monotonic() - killed_at < RECOVERY_DEADLINE:
        plan = await compute_plan(runtime)
        if plan.blockers:
            blockers = "; ".join(f"{b.type}: {b.message}" for b in plan.blockers)
            recovery.problems.append(f"plan {recovery.rounds + 1} after the kill: {blockers}")
            return recovery
        if not plan.actions:
            recovery.converged = True
            return recovery
        result = await apply_plan(runtime, plan.plan_id)
        recovery.rounds += 1
        failed = [
            f"{r.action_id} {r.op}: {r.message}" for r in result.actions if r.result == "failed"
        ]
        if failed:
            recovery.problems.append(f"apply {recovery.rounds} after the kill: {failed}")
            return recovery
    recovery.problems.append(f"not converged {RECOVERY_DEADLINE:g}s after the kill")
    return recovery


async def _kill_and_recover(scene: crash._Scene, kill: DeployKill) -> DeployKillResult:
    state = scene.emulator.state
    async with DokployClient(scene.base_url, crash.API_KEY, timeout=10.0) as client:
        runtime = scene.runtime(client)
        plan = await _store_and_plan(runtime)
        log = scene.workdir / f"apply-{kill.label}.log"
        parallelism = {"SETPOINT_DOKPLOY_DEPLOY_PARALLELISM": str(kill.parallelism)}
        child = crash._start_apply(scene, plan.plan_id, crash.PARALLEL, log, parallelism)
        what = f"deploy {kill.k} {kill.moment.value}"
        await anyio.to_thread.run_sync(crash._kill_at, child, _trigger(state, kill), what, log)
        killed_at = time.monotonic()
        asked, started, settled = _builds(state)
        recovery = await _recover(runtime, killed_at)
        seconds = time.monotonic() - killed_at
    problems = [
        *recovery.problems,
        *crash._after_checks(scene.engine, scene.emulator, plan.plan_id),
    ]
    return DeployKillResult(
        kill=kill,
        queued=asked - started,
        building=started - settled,
        recovered=recovery.converged,
        rounds=recovery.rounds,
        seconds=seconds,
        deployed_twice=tuple(checks.deployed_twice(state)),
        problems=tuple(problems),
    )


def run_deploy_kill(database_url: str, kill: DeployKill, workdir: Path) -> DeployKillResult:
    """Kill `setpoint apply` in its deploy wait on an empty database, recover and check."""
    engine = make_engine(database_url)
    upgrade(engine)
    app = create_app(api_key=crash.API_KEY, seed=37, build_seconds=BUILD_SECONDS)
    noise = crash._KilledClientNoise()
    logging.getLogger("uvicorn.error").addFilter(noise)
    try:
        with serve(app) as base_url:
            scene = crash._Scene(engine, database_url, base_url, app.state.emulator, workdir)
            return anyio.run(_kill_and_recover, scene, kill)
    finally:
        logging.getLogger("uvicorn.error").removeFilter(noise)
        engine.dispose()


def deploy_kills(*, full: bool, offset: int = 0) -> list[DeployKill]:
    """Full: every deploy k of the plan at both moments, with one and with four deploys of
    ours in the server's queue (32 kills). Reduced (CI): SQLite (offset 0) the third deploy
    asked for with four in the queue, so deploys are queued and building at the kill;
    PostgreSQL (offset 1) the fifth deploy's build started, one at a time."""
    if full:
        return [
            DeployKill(parallelism, moment, k)
            for parallelism in (1, 4)
            for moment in DeployMoment
            for k in range(1, DEPLOYS + 1)
        ]
    if offset == 0:
        return [DeployKill(4, DeployMoment.asked, 3)]
    return [DeployKill(1, DeployMoment.building, 5)]
