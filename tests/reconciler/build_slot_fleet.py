"""Three lanes on one Dokploy server and one on another, for the build slot's line (issue 23):
the fleet, its scheduled passes under a loop on a moved clock, and what Dokploy was asked."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from providers.dokploy.emulator import Emulator, create_app
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.loop.passes import PassReport, reconcile_pass
from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.settings import Settings
from tests.providers.dokploy.contract import ContractRecorder
from tests.providers.dokploy.fixtures import API_KEY, make_client
from tests.reconciler.conftest import Workload, owned_service_of, store_fleet
from tests.support.fleets import converge
from tests.support.health_probes import probe_answered_by

SLOTS = ("a", "b", "c")  # lanes of product "slots", all on server build-1
ELSEWHERE = "product:other/d"  # on server build-2
BUILD_SECONDS = 120.0

FLEET = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: slots}}
spec:
  repository: acme/slots
  dokploy: {{project: slots, server: build-1}}
  runtime: {{port: 8080}}
  lanes:
    - {{name: a, environment: a, image: "ghcr.io/acme/slots:{a}", apply: auto-safe}}
    - {{name: b, environment: b, image: "ghcr.io/acme/slots:{b}", apply: auto-safe}}
    - {{name: c, environment: c, image: "ghcr.io/acme/slots:{c}", apply: auto-safe}}
---
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: other}}
spec:
  repository: acme/other
  dokploy: {{project: other, server: build-2}}
  runtime: {{port: 8080}}
  lanes:
    - {{name: d, environment: d, image: "ghcr.io/acme/other:{d}", apply: auto-safe}}
"""


def lane_key(name: str) -> str:
    return ELSEWHERE if name == "d" else f"product:slots/{name}"


@dataclass(frozen=True)
class Asked:
    """One deploy Dokploy was asked for: where, of what, and whether a build of another of
    that server's services was still running or queued when it was asked."""

    server: str
    service_id: str
    title: str
    server_busy: bool


@dataclass
class SlotFleet:
    """The fleet converged, then scheduled passes under a loop while builds take two minutes
    on the emulator's clock, which moves with the runtime's."""

    runtime: Runtime
    emulator: Emulator
    folder: Path
    images: dict[str, str] = field(default_factory=lambda: dict.fromkeys("abcd", "v0"))
    asked: list[Asked] = field(default_factory=list)
    servers: dict[str, str] = field(default_factory=dict)  # server id -> name

    @classmethod
    async def converged(cls, runtime: Runtime, emulator: Emulator, folder: Path) -> SlotFleet:
        servers = {emulator.add_server(n)["serverId"]: n for n in ("build-1", "build-2")}
        looping = dataclasses.replace(runtime, parks_long_waits=True, clock=ShiftedClock())
        fleet = cls(looping, emulator, folder, servers=servers)
        fleet._store()
        await converge(runtime, [lane_key(n) for n in "abcd"])  # quick builds, no loop
        fleet._watch_deploys()
        emulator.state.build_seconds = BUILD_SECONDS
        return fleet

    def edit(self, names: Iterable[str]) -> None:
        """A new image for each named lane: each asks for a deploy at its next pass."""
        for name in names:
            self.images[name] = f"v{int(self.images[name][1:]) + 1}"
        self._store()

    async def scheduled_pass(self) -> PassReport:
        return await reconcile_pass(self.runtime)

    def advance(self, seconds: float) -> None:
        """Time passes for Dokploy's builds and the runtime's clock alike."""
        clock = self.runtime.clock
        assert isinstance(clock, ShiftedClock)
        clock.advance(seconds)
        self.emulator.state.advance(seconds)

    def runs_what_it_asked_for(self, name: str) -> bool:
        """The lane's service runs its desired image (its last deploy is done)."""
        owned = owned_service_of(self.runtime.database, lane_key(name))
        live = self.emulator.state.live.get(owned.object_id) if owned else None
        product = "other" if name == "d" else "slots"
        return (
            live is not None and live.docker_image == f"ghcr.io/acme/{product}:{self.images[name]}"
        )

    def building(self, server: str) -> list[str]:
        """Services with a build of `server` not yet ended (running or queued)."""
        return [
            build.service_id
            for builds in self.emulator.state.builds.values()
            for build in builds
            if not build.settled and self._server_of(build.row.get("serverId")) == server
        ]

    def _server_of(self, server_id: object) -> str:
        return self.servers.get(str(server_id), "")

    def _store(self) -> None:
        path = self.folder / "slots.yaml"
        path.write_text(FLEET.format(**self.images))
        store_fleet(self.runtime.database, path, prune=True)

    def _watch_deploys(self) -> None:
        """Record each deploy as Dokploy queues it (a spy on the emulator, not on Setpoint)."""
        state = self.emulator.state
        queue_build = state.queue_build

        def recorded(kind, service_id, title, description):  # type: ignore[no-untyped-def]
            row = state.applications.get(service_id) or state.composes[service_id]
            server = self._server_of(row.get("serverId"))
            busy = any(other != service_id for other in self.building(server))
            self.asked.append(Asked(server, service_id, title or "", busy))
            queue_build(kind, service_id, title, description)

        state.queue_build = recorded  # type: ignore[method-assign]


@asynccontextmanager
async def fresh_slot_fleet(
    folder: Path, database_url: str | None = None
) -> AsyncIterator[SlotFleet]:
    """A converged `SlotFleet` on a database (SQLite in `folder` unless `database_url`) and
    a Dokploy emulator of its own (one per Hypothesis example)."""
    engine = make_engine(database_url or f"sqlite:///{folder / 'setpoint.db'}")
    upgrade(engine)
    app = create_app(api_key=API_KEY, seed=11, build_seconds=0.01)
    emulator: Emulator = app.state.emulator
    try:
        async with make_client(app, ContractRecorder()) as client:
            runtime = Runtime(
                database=engine,
                settings=Settings(database_url="sqlite://", deploy_poll_seconds=0.01),
                providers={
                    "dokploy": client,
                    HEALTH: HealthChecks(probe_answered_by(Workload().app)),
                },
                kinds=all_kinds,
                actor="scheduler:test",
            )
            yield await SlotFleet.converged(runtime, emulator, folder)
    finally:
        engine.dispose()
