"""Parked requests over any sequence of requests, loop passes, build changes, releases and
worker deaths (DESIGN invariant 17, issue 23).

The rules: Dokploy is asked to deploy one configuration of the lane at most once (a parked
request's later looks await the deploy it asked for; a worker that died while looking leaves
it to the next), and every operation ends exactly once: once it is final it never changes
again, and when the builds end and the loop has looked, none is left open. Each example runs
on a database and a Dokploy emulator of its own, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from enum import StrEnum
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from providers.dokploy.emulator import Emulator, create_app
from reconciler.records import operations, work_queue
from reconciler.records.database import session_scope
from reconciler.records.operations import OperationPhase, OperationStatus
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.settings import Settings
from tests.databases import fresh_postgres_database, postgres_base_url
from tests.loop.support import fast_engine
from tests.providers.dokploy.fixtures import API_KEY
from tests.reconciler.conftest import Workload, store_fleet
from tests.support.emulated_runtime import emulated_runtime, time_passes
from tests.support.notes_fleet import notes_fleet
from tests.support.workflow_requests import request_lane

LANE = "product:notes/testing"
BUILD_SECONDS = 120.0  # on the emulator's clock: a build ends only when a step moves it


class Step(StrEnum):
    request = "request"  # a workflow asks for the lane, with apply
    loop = "loop"  # the loop works what is due (a second of the runtime's clock later)
    build_ends = "build_ends"  # Dokploy's clock moves past the build
    next_build_fails = "next_build_fails"  # the next build Dokploy starts ends in error
    release = "release"  # the lane's image changes: a new configuration
    worker_dies = "worker_dies"  # a worker takes the lane, starts on it, and is killed


steps = st.lists(st.sampled_from(list(Step)), min_size=1, max_size=7)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    """Where each example makes its database: None for a SQLite file of its own, else the
    PostgreSQL server a database of its own is made on (skipped when none is set)."""
    if request.param == "sqlite":
        return None
    base = postgres_base_url()
    if base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    return base


@contextmanager
def database_url(base: str | None, folder: Path) -> Iterator[str]:
    if base is None:
        yield f"sqlite:///{folder / 'setpoint.db'}"
        return
    with fresh_postgres_database(base) as url:
        yield url


@asynccontextmanager
async def fresh_runtime(url: str) -> AsyncIterator[tuple[Runtime, Emulator]]:
    app = create_app(api_key=API_KEY, seed=11, build_seconds=BUILD_SECONDS)
    settings = Settings(
        database_url="sqlite://",
        deploy_poll_seconds=0.01,
        # a failed configuration is not deployed again within an example
        deploy_failed_backoff_seconds=3600,
    )
    async with emulated_runtime(url, app, Workload().app, settings, ShiftedClock()) as runtime:
        yield runtime, app.state.emulator


def _release(runtime: Runtime, folder: Path, tag: int) -> None:
    (folder / "notes.yaml").write_text(notes_fleet(image=f"ghcr.io/acme/notes:v{tag}"))
    store_fleet(runtime.database, folder / "notes.yaml", prune=True)


def _worker_dies(runtime: Runtime) -> None:
    """What a worker killed mid-look leaves: the lane claimed with a hold already over, its
    open operations running as the worker had moved them on."""
    with session_scope(runtime.database, write_lock=True) as session:
        work_queue.enqueue(session, [LANE], work_queue.WorkPriority.workflow, "t", runtime.now())
        work_queue.claim(session, "killed-worker", runtime.now(), limit=1, hold_seconds=-60)
        found = operations.open_for_lane(session, LANE)
        operations.advance(
            session,
            [op.id for op in found],
            runtime.now(),
            status=OperationStatus.running,
            phase=OperationPhase.applying,
        )


async def _loop(runtime: Runtime) -> None:
    assert isinstance(runtime.clock, ShiftedClock)
    runtime.clock.advance(1.0)
    await fast_engine(runtime, loop_workers=1).run_once()


def _snapshot(runtime: Runtime) -> dict[str, tuple[object, ...]]:
    with session_scope(runtime.database) as session:
        rows = session.exec(select(operations.Operation)).all()
        return {op.id: (op.status, op.phase, op.result, op.error, op.updated_at) for op in rows}


def _check(
    runtime: Runtime, emulator: Emulator, ended: dict[str, tuple[object, ...]]
) -> dict[str, tuple[object, ...]]:
    """The rules after a step: each configuration deployed at most once; an operation that
    ended has not changed since. Returns the operations ended now."""
    titles = Counter(
        build.row["title"] for builds in emulator.state.builds.values() for build in builds
    )
    assert all(count == 1 for count in titles.values()), titles
    now = _snapshot(runtime)
    for op_id, seen in ended.items():
        assert now[op_id] == seen, f"{op_id} ended twice: {seen} then {now[op_id]}"
    return {op_id: row for op_id, row in now.items() if OperationStatus(str(row[0])).final}


async def run_steps(plan: list[Step], url: str, folder: Path) -> None:
    async with fresh_runtime(url) as (runtime, emulator):
        tag = 1
        _release(runtime, folder, tag)
        ended: dict[str, tuple[object, ...]] = {}
        for step in plan:
            if step is Step.request:
                request_lane(runtime.database, LANE, apply=True)
            elif step is Step.loop:
                await _loop(runtime)
            elif step is Step.build_ends:
                time_passes(emulator, runtime, BUILD_SECONDS + 1)
            elif step is Step.next_build_fails:
                emulator.faults.fail_next_deploy()
            elif step is Step.release:
                tag += 1
                _release(runtime, folder, tag)
            else:
                _worker_dies(runtime)
            ended = _check(runtime, emulator, ended)
        for _ in range(4):  # the builds end, and the loop looks at what waited for them
            time_passes(emulator, runtime, BUILD_SECONDS + 1)
            await _loop(runtime)
            ended = _check(runtime, emulator, ended)
        left = {op: row for op, row in _snapshot(runtime).items() if op not in ended}
        assert not left, f"operations never ended: {left}"


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=steps)
def test_a_parked_request_deploys_each_configuration_once_and_ends_once(
    backend: str | None, plan: list[Step]
) -> None:
    with tempfile.TemporaryDirectory() as folder, database_url(backend, Path(folder)) as url:
        asyncio.run(run_steps(plan, url, Path(folder)))
