"""Runner lanes end to end: both emulators served on loopback and linked, as in the demo.

A runner application the Dokploy emulator deploys comes online in the GitHub emulator with
its labels; tests mark runners busy through the GitHub emulator's state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator
from providers.dokploy.emulator import create_app as create_dokploy
from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github
from providers.github.emulator.runner_link import RunnerLink
from providers.github.emulator.state import EmuRunner
from reconciler.demo.loopback import serve
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.loop.passes import LaneResult, PassReport, reconcile_pass
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.settings import Settings
from tests.reconciler.conftest import store_fleet

DOKPLOY_KEY = "runner-e2e-dokploy-key"
GITHUB_TOKEN = "ghp_runnere2etoken0123456789"
# Seconds on the rig's clock: a test moves the clock past the window (and past the retry
# time of the lane that answered "idle once") instead of waiting it out.
IDLE_WINDOW = 60.0

POOL = """\
apiVersion: setpoint.dev/v1
kind: Host
metadata: {{name: build-1}}
spec:
  type: dokploy-server
  dokployServer: {server}
  approved: {approved}
  maxRunners: {max_runners}
---
apiVersion: setpoint.dev/v1
kind: RunnerPool
metadata: {{name: ci}}
spec:
  scope: repository
  repository: {repository}
  allowedRepositories: {allowed}
  host: build-1
  count: {{min: {min}, max: {max}}}
  labels: {labels}
  image: {image}
  ephemeral: false
  allow: {allow}
"""


async def _healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
    raise AssertionError("runner lanes make no health checks")


@dataclass
class Rig:
    runtime: Runtime
    github: EmulatorState
    dokploy: Emulator
    clock: ShiftedClock
    engine: Engine
    folder: Path
    dokploy_url: str
    github_url: str

    def declare(
        self,
        *,
        approved: bool = True,
        repository: str = "acme/shop",
        allowed: str = "[]",
        count: tuple[int, int] = (1, 2),
        allow: str = "[create, drain, restart, remove]",
        server: str = "build-1",
        max_runners: int = 4,
        labels: str = "[self-hosted, linux, shop]",
        image: str = "ghcr.io/actions/actions-runner:2.321.0",
    ) -> None:
        text = POOL.format(
            approved=str(approved).lower(),
            repository=repository,
            allowed=allowed,
            min=count[0],
            max=count[1],
            allow=allow,
            server=server,
            max_runners=max_runners,
            labels=labels,
            image=image,
        )
        (self.folder / "runners.yaml").write_text(text)
        store_fleet(self.engine, self.folder)

    async def reconcile(self) -> PassReport:
        return await settled_pass(self.runtime)

    async def reconcile_once(self) -> PassReport:
        return await reconcile_pass(self.runtime)

    def runners(self, scope: str = "acme/shop") -> dict[str, EmuRunner]:
        return {r.name: r for r in self.github.runners_in(scope)}

    def applications(self) -> dict[str, str]:
        """Runner applications in Dokploy: name -> applicationStatus."""
        state = self.dokploy.state
        state.tick()
        return {row["name"]: row["applicationStatus"] for row in state.applications.values()}


def every_row(engine: Engine) -> str:
    """Every table Setpoint keeps (plans, audit, status, ownership, ...), as text."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return "\n".join(
            repr(row)
            for table in metadata.sorted_tables
            for row in connection.execute(select(table))
        )


async def settled_pass(runtime: Runtime) -> PassReport:
    """A pass, then the passes that settle the runners it started: a started runner's lane
    is parked until its next look, so it is passed again each poll until it is online or
    timed out. One report: each lane's first outcome, or how its start ended."""
    report = await reconcile_pass(runtime)
    first = {r.lane: r for r in report.lanes}
    for _ in range(400):
        if not any(starting(r) for r in first.values()):
            break
        await anyio.sleep(min(2.0, runtime.settings.deploy_poll_seconds))
        for result in (await reconcile_pass(runtime)).lanes:
            # A look may find its plan stale (the runner just came online): again.
            settled = result.outcome not in ("waiting", "refused")
            if starting(first[result.lane]) and settled:
                first[result.lane] = result
    report.lanes = [first[r.lane] for r in report.lanes]
    return report


def starting(result: LaneResult) -> bool:
    """The lane is parked until its started runner is looked at again."""
    return result.outcome == "waiting" and "not online in" in result.detail


def outcomes(report: PassReport) -> dict[str, str]:
    return {r.lane: r.outcome for r in report.lanes if r.lane.startswith("runner:")}


@pytest.fixture
async def rig(engine: Engine, tmp_path: Path) -> AsyncIterator[Rig]:
    github_app = create_github(seed=3)
    github: EmulatorState = github_app.state.emulator
    github.add_repo("acme", "shop")
    dokploy_app = create_dokploy(api_key=DOKPLOY_KEY, seed=5, build_seconds=0.05)
    dokploy: Emulator = dokploy_app.state.emulator
    dokploy.add_server("build-1")
    dokploy.link_runners(RunnerLink(github))
    clock = ShiftedClock()
    settings = Settings(
        database_url="sqlite://",
        deploy_poll_seconds=0.05,
        # Real seconds: long enough that a loaded machine still sees a linked runner come
        # online in time (2 s failed a create once under CI's own load).
        runner_online_timeout_seconds=8.0,
        runner_idle_window_seconds=IDLE_WINDOW,
        runner_busy_retry_seconds=0.05,
        runner_offline_grace_seconds=60,
        runner_orphan_grace_seconds=60,
    )
    with serve(dokploy_app) as dokploy_url, serve(github_app) as github_url:
        async with (
            DokployClient(dokploy_url, DOKPLOY_KEY, timeout=5.0) as dokploy_client,
            GitHubClient(github_url, GITHUB_TOKEN, timeout=5.0) as github_client,
        ):
            runtime = Runtime(
                database=engine,
                settings=settings,
                actor="scheduler",
                kinds=all_kinds,
                providers={
                    "dokploy": dokploy_client,
                    HEALTH: HealthChecks(_healthy),
                    "github": github_client,
                },
                clock=clock,
            )
            yield Rig(runtime, github, dokploy, clock, engine, tmp_path, dokploy_url, github_url)
