"""Replicas for the loop tests: each a loop engine on its own thread, event loop, database
engine, Dokploy client and holder identity, against one Dokploy emulator served over HTTP."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy.engine import Engine

from desired_state.loader import load_text
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.loop.engine import LoopEngine, WorkInterval
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings

API_KEY = "loop-replicas-key"


def fleet_yaml(products: int, deploy_timeout: float = 600) -> str:
    """`products` products of two auto-safe lanes each; the two lanes share a project (and
    its environment list), which the planner proposes once per lane's plan. A deploy asked
    for and never seen to start is awaited for three `deploy_timeout`s, then asked again."""
    docs = [
        f"""apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: p{i:03d}}}
spec:
  repository: acme/p{i:03d}
  dokploy: {{project: p{i:03d}}}
  runtime: {{port: 8080}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/p{i:03d}:main
      apply: auto-safe
      deployTimeoutSeconds: {deploy_timeout:g}
    - name: staging
      environment: staging
      image: ghcr.io/acme/p{i:03d}:main
      apply: auto-safe
      deployTimeoutSeconds: {deploy_timeout:g}
"""
        for i in range(products)
    ]
    return "---\n".join(docs)


def store_fleet_text(engine: Engine, text: str) -> None:
    with session_scope(engine) as session:
        apply_documents(session, load_text(text), prune=False, now=utcnow())


async def healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
    return HealthResult(ok=True, url=url, status=200, reason="test", elapsed_ms=0.0)


def replica_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "deploy_poll_seconds": 0.02,
        "loop_workers": 2,
        "loop_batch_size": 7,  # odd: the two lanes of a product often land in two batches
        "loop_poll_seconds": 0.05,
        "loop_backoff_base_seconds": 0.1,
        "loop_backoff_cap_seconds": 0.5,
        "loop_claim_hold_seconds": 5.0,
        "lease_ttl_seconds": 5.0,
    }
    return Settings(**(values | overrides))


@dataclass
class Replica:
    """One replica on its own thread; `stop()` asks it to shut down cleanly."""

    name: str
    settings: Settings
    dokploy_url: str
    work_log: list[WorkInterval] = field(default_factory=list)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            anyio.run(self._run)
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    async def _run(self) -> None:
        engine = make_engine(self.settings.database_url)
        try:
            async with DokployClient(self.dokploy_url, API_KEY, timeout=10.0) as client:
                runtime = Runtime(
                    database=engine,
                    settings=self.settings,
                    actor=f"replica-{self.name}",
                    kinds=all_kinds,
                    providers={"dokploy": client, HEALTH: HealthChecks(healthy)},
                )
                loop = LoopEngine(runtime, name=self.name)
                self.work_log = loop.work_log
                async with anyio.create_task_group() as group:
                    group.start_soon(loop.run, 3600.0)
                    await anyio.to_thread.run_sync(self._stop.wait)
                    loop.request_stop()
        finally:
            engine.dispose()


def duplicates(emulator: Emulator) -> dict[str, int]:
    """Objects the emulator holds more than once (by kind and name): duplicate creates."""
    state = emulator.state
    names = Counter(f"project:{p['name']}" for p in state.projects.values())
    names.update(f"environment:{e['projectId']}/{e['name']}" for e in state.environments.values())
    names.update(f"application:{a['name']}" for a in state.applications.values())
    return {name: count for name, count in names.items() if count > 1}


def overlaps(intervals: list[WorkInterval]) -> list[tuple[WorkInterval, WorkInterval]]:
    """Pairs of intervals in which two workers held one lane at once."""
    by_lane: dict[str, list[WorkInterval]] = {}
    for interval in intervals:
        by_lane.setdefault(interval.lane, []).append(interval)
    found = []
    for worked in by_lane.values():
        worked.sort(key=lambda i: i.started)
        for before, after in itertools.pairwise(worked):
            if after.started < before.ended:
                found.append((before, after))
    return found


def setpoint_run_process(
    database_url: str, dokploy_url: str, **settings: str
) -> subprocess.Popen[bytes]:
    """`setpoint run` in a child process: a replica that can be killed for real."""
    env = {
        **os.environ,
        "SETPOINT_DATABASE_URL": database_url,
        "SETPOINT_DOKPLOY_URL": dokploy_url,
        "SETPOINT_DOKPLOY_API_KEY": API_KEY,
        "SETPOINT_DEPLOY_POLL_SECONDS": "0.05",
        "SETPOINT_LOOP_BATCH_SIZE": "7",
        "SETPOINT_LOOP_CLAIM_HOLD_SECONDS": "2",
        "SETPOINT_LEASE_TTL_SECONDS": "2",
        **{f"SETPOINT_{name.upper()}": value for name, value in settings.items()},
    }
    command = [sys.executable, "-c", "from reconciler.cli.app import main; main()", "run"]
    return subprocess.Popen(  # noqa: S603 -- our own interpreter, fixed arguments
        [*command, "--interval", "3600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
