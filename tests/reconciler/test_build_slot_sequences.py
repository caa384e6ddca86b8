"""The build slot's line over any sequence of lanes asking for deploys, scheduled passes,
builds ending and workers dying while they hold or wait for a slot (issue 23): at most one of
our builds runs (or waits in Dokploy's queue) per server at a time, no configuration is
deployed twice, and once time passes every lane runs what it asked for. Each example runs on
a database and a Dokploy emulator of its own."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.kinds.product.execute import build_slot_of
from reconciler.records import status, turns
from tests.databases import fresh_postgres_database, postgres_base_url
from tests.reconciler.build_slot_fleet import (
    BUILD_SECONDS,
    SlotFleet,
    fresh_slot_fleet,
    lane_key,
)
from tests.reconciler.conftest import dokploy

LANES = "abcd"
# A worker that dies holding or waiting for a slot leaves a place nobody renews.
DEAD_LEASE_SECONDS = 300.0


@dataclass(frozen=True)
class Ask:
    lanes: tuple[str, ...]  # new images: each lane asks for a deploy at its next pass


@dataclass(frozen=True)
class Pass:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float  # time passes: builds end


@dataclass(frozen=True)
class Die:
    server: str  # a worker takes (or queues for) that server's slot and dies


Step = Ask | Pass | Wait | Die

steps = st.lists(
    st.one_of(
        st.builds(Ask, st.lists(st.sampled_from(LANES), min_size=1, unique=True).map(tuple)),
        st.just(Pass()),
        st.builds(Wait, st.sampled_from([1.0, 30.0, BUILD_SECONDS + 1, 400.0])),
        st.builds(Die, st.sampled_from(["build-1", "build-2"])),
    ),
    min_size=1,
    max_size=10,
)


def _die(fleet: SlotFleet, server: str, number: int) -> None:
    (server_id,) = [i for i, n in fleet.servers.items() if n == server]
    turns.take(
        fleet.runtime.database,
        build_slot_of(dokploy(fleet.runtime), server_id),
        f"product:gone/worker-{number}",
        capacity=1,
        now=fleet.runtime.now(),
        lease_seconds=DEAD_LEASE_SECONDS,
    )


def _settled(fleet: SlotFleet) -> bool:
    ready = {
        row.lane: next(c["status"] for c in row.conditions if c["type"] == "Ready")
        for row in status.all_statuses(fleet.runtime.database)
    }
    building = fleet.building("build-1") + fleet.building("build-2")
    return not building and all(
        ready.get(lane_key(n)) == "True" and fleet.runs_what_it_asked_for(n) for n in LANES
    )


def _check(fleet: SlotFleet) -> None:
    busy = [a for a in fleet.asked if a.server_busy]
    assert not busy, f"asked while another of our builds ran on its server: {busy}"
    titles = [(a.service_id, a.title) for a in fleet.asked]
    assert len(titles) == len(set(titles)), f"a configuration deployed twice: {titles}"


async def run_steps(plan: list[Step], folder: Path, database_url: str | None = None) -> None:
    async with fresh_slot_fleet(folder, database_url) as fleet:
        for number, step in enumerate(plan):
            if isinstance(step, Ask):
                fleet.edit(step.lanes)
            elif isinstance(step, Pass):
                await fleet.scheduled_pass()
            elif isinstance(step, Wait):
                fleet.advance(step.seconds)
            else:
                _die(fleet, step.server, number)
            _check(fleet)
        for _ in range(12):  # time passes and the loop comes back, until all is done
            if _settled(fleet):
                break
            fleet.advance(BUILD_SECONDS + 10)
            await fleet.scheduled_pass()
            _check(fleet)
        assert _settled(fleet), [(a.server, a.title) for a in fleet.asked]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
@example([Ask(("a", "b", "c", "d")), Pass(), Wait(1.0), Pass()])
@example([Ask(("a",)), Pass(), Die("build-1"), Ask(("b", "c")), Wait(400.0), Pass()])
def test_one_build_per_server_at_a_time_and_no_configuration_deployed_twice(
    plan: list[Step],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_steps(plan, Path(folder)))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
@example([Ask(("a", "b", "c", "d")), Pass(), Wait(1.0), Pass()])
def test_on_postgresql_one_build_per_server_at_a_time_and_none_deployed_twice(
    plan: list[Step],
) -> None:
    base = postgres_base_url()
    if base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    with tempfile.TemporaryDirectory() as folder, fresh_postgres_database(base) as url:
        asyncio.run(run_steps(plan, Path(folder), url))
