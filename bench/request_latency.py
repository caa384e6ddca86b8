"""Request to apply on a busy loop (issue 23): how soon a workflow's request starts its lane's
apply while hundreds of other lanes are mid-apply and one lane is stuck.

Target: "p99 time from request to the start of that lane's apply while 200 other lanes are
mid-apply with 0.2 s builds and one lane stuck for 180 s: under 2 s".

The Dokploy emulator runs in a child process on loopback (bench/fleet.py's), building every
deploy for `--build-seconds`. The fleet: `--load` products whose testing lane the scheduled
pass applies in waves (each wave gives every one of them a new image), one product whose
build never ends (the emulator's stuck deployment; its lane waits out its 180 s deploy
timeout), and one product per request. The loop (`LoopEngine.run`, default settings unless
given) works the waves; meanwhile requests come in as the API makes them (an operation
reserved and the lane queued at workflow priority, after CI changed the lane's image). A
request's latency is from just before it is made to its plan's `apply_started` audit record.

    uv run python bench/request_latency.py                   # 200 lanes, 0.2 s builds
    uv run python bench/request_latency.py --load 20 --requests 10 --waves 1   # smoke size
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from fleet import API_KEY, EmulatorProcess, healthy  # bench/fleet.py, beside this file
from sqlalchemy.engine import make_url
from sqlmodel import col

from desired_state.loader import load_text
from providers.dokploy.client import DokployClient
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.loop.engine import LoopEngine
from reconciler.records import audit, operations, plan_store, work_queue
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread, make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.records.operations import OperationRequest
from reconciler.records.ownership import OwnedObject
from reconciler.records.work_queue import LaneWork, WorkPriority
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings

TARGET_P99_SECONDS = 2.0
STUCK = "stuck"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--load", type=int, default=200, help="lanes applied in each wave")
    parser.add_argument("--requests", type=int, default=25, help="requests per wave")
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument("--build-seconds", type=float, default=0.2)
    parser.add_argument("--spacing", type=float, default=0.1, help="seconds between requests")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--threads", type=int, default=None, help="worker threads for storage calls (anyio: 40)"
    )
    parser.add_argument(
        "--postgres",
        default=None,
        help="a PostgreSQL server URL (postgresql+psycopg://user@host:port/db): the bench "
        "makes a database of its own there and drops it after; SQLite if not given",
    )
    return parser.parse_args()


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[Any]:
    """A fresh, migrated database: a SQLite file, or a database of its own on PostgreSQL."""
    if args.postgres is None:
        with tempfile.TemporaryDirectory(prefix="setpoint-bench-") as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(engine)
            yield engine
            engine.dispose()
        return
    server = make_url(args.postgres)
    name = f"setpoint_bench_{os.getpid()}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()


def _product(name: str, tag: str, *, extra: str = "") -> str:
    return f"""apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: {name}}}
spec:
  repository: acme/{name}
  dokploy: {{project: {name}}}
  runtime: {{port: 8080}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/{name}:{tag}
      apply: auto-safe{extra}
"""


def _store(engine: Any, text: str, source: str) -> None:
    with session_scope(engine) as session:
        apply_documents(session, load_text(text, source), prune=False, now=utcnow())


def _load_text(args: argparse.Namespace, tag: str) -> str:
    return "---\n".join(_product(f"load{i}", tag) for i in range(args.load))


def _request_names(args: argparse.Namespace) -> list[str]:
    return [f"req{i}" for i in range(args.requests * args.waves)]


@dataclass
class Sample:
    lane: str
    operation: str
    asked: datetime
    in_flight: int  # lanes claimed by the loop when the request was made


def _request(engine: Any, name: str) -> Sample:
    """What CI and the API do: a new image for the lane, then the request (one transaction
    reserves the operation and queues the lane)."""
    _store(engine, _product(name, "v2"), f"{name}.yaml")
    lane = f"product:{name}/testing"
    now = utcnow()
    with session_scope(engine) as session:
        in_flight = len(work_queue.claimed_lanes(session, now))
        reserved = operations.reserve(
            session,
            OperationRequest(
                lane=lane, requester="repo:acme/bench", body_digest=name, apply_requested=True
            ),
            now,
        )
        work_queue.enqueue(session, [lane], WorkPriority.workflow, "workflow request", now)
    return Sample(lane, reserved.operation.id, now, in_flight)


def _stick(engine: Any, emulator: EmulatorProcess) -> None:
    """The stuck product's builds never end (its lane waits out its 180 s deploy timeout)."""
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(col(OwnedObject.object_id)).where(
                col(OwnedObject.lane) == f"product:{STUCK}/testing",
                col(OwnedObject.object_type) == "application",
            )
        ).all()
    for (service_id,) in rows:
        emulator._control(
            "POST", "faults", {"action": "stuck_deployment", "service_id": service_id}
        )


def _wave_queued(engine: Any, lanes: list[str]) -> None:
    with session_scope(engine, write_lock=True) as session:
        work_queue.enqueue(session, lanes, WorkPriority.scheduled, "bench wave", utcnow())


def _load_pending(engine: Any) -> int:
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(sa.func.count()).where(LaneWork.lane.like("product:load%"))  # type: ignore[attr-defined]
        )
        return int(rows.scalar_one())


def _latencies(engine: Any, samples: list[Sample]) -> list[tuple[float, float]]:
    """Per request: (to its apply's start, to its plan's computation)."""
    found = []
    with session_scope(engine) as session:
        for sample in samples:
            operation = operations.get(session, sample.operation)
            if operation is None or not operation.plan_id:
                raise SystemExit(f"{sample.lane}: its operation never got a plan")
            started = audit.list_records(
                session, plan_id=operation.plan_id, event=AuditEvent.apply_started, limit=1
            )
            if not started:
                raise SystemExit(f"{sample.lane}: {operation.status}: {operation.error}")
            plan, _ = plan_store.load(engine, operation.plan_id)
            found.append(
                (
                    (started[0].at - sample.asked).total_seconds(),
                    (plan.created_at - sample.asked).total_seconds(),
                )
            )
    return found


async def _converge(runtime: Runtime) -> None:
    result = await apply_plan(runtime, (await compute_plan(runtime)).plan_id)
    if not result.ok:
        raise SystemExit(f"could not converge the fleet: {result.status}")


async def _run(
    args: argparse.Namespace, runtime: Runtime, emulator: EmulatorProcess
) -> dict[str, Any]:
    engine = runtime.database
    loads = [f"product:load{i}/testing" for i in range(args.load)]
    loop = LoopEngine(runtime)
    samples: list[Sample] = []
    names = iter(_request_names(args))
    cpu, wall = time.process_time(), time.perf_counter()
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run, 3600.0)
        await anyio.sleep(0.5)  # the tick's quiet pass over the converged fleet
        for wave in range(args.waves):
            await in_thread(_store, engine, _load_text(args, f"w{wave}"), "load.yaml")
            if wave == 0:
                await in_thread(_store, engine, _product(STUCK, "w0", extra=STUCK_LANE), "s.yaml")
                await in_thread(_wave_queued, engine, [f"product:{STUCK}/testing"])
            await in_thread(_wave_queued, engine, loads)
            await anyio.sleep(0.3)  # the wave is claimed and under way
            for _ in range(args.requests):
                samples.append(await in_thread(_request, engine, next(names)))
                await anyio.sleep(args.spacing)
            try:  # the wave is done
                await _until(lambda: _load_pending(engine) == 0, 600)
            except TimeoutError:  # the requests were measured all the same
                left = await in_thread(_load_pending, engine)
                print(f"wave {wave}: {left} load lane(s) still queued after 600 s (backing off)")
        await _until(lambda: all(_ended(engine, s) for s in samples), 60)
        loop.request_stop()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies = await in_thread(_latencies, engine, samples)
    return {"latencies": latencies, "samples": samples, "cpu": cpu, "wall": wall}


STUCK_LANE = "\n      deployTimeoutSeconds: 180"


async def _until(check: Callable[[], bool], timeout: float) -> None:
    """Poll a database condition (the bench watches the loop from outside)."""
    with anyio.fail_after(timeout):
        while not await in_thread(check):  # noqa: ASYNC110 -- the database has no events
            await anyio.sleep(0.2)


def _ended(engine: Any, sample: Sample) -> bool:
    with session_scope(engine) as session:
        operation = operations.get(session, sample.operation)
    return operation is not None and operation.status in {"succeeded", "failed", "blocked"}


async def main(args: argparse.Namespace) -> None:
    overrides: dict[str, Any] = {
        "database_url": "sqlite://",
        "loop_shutdown_grace_seconds": 1.0,
    }
    if args.batch_size:
        overrides["loop_batch_size"] = args.batch_size
    if args.workers:
        overrides["loop_workers"] = args.workers
    settings = Settings(**overrides)
    if args.threads:
        anyio.to_thread.current_default_thread_limiter().total_tokens = args.threads
    emulator = EmulatorProcess(build_seconds=args.build_seconds)
    emulator_cpu = 0.0
    with _database(args) as engine:
        fleet = [_load_text(args, "main"), _product(STUCK, "main", extra=STUCK_LANE)]
        fleet += [_product(name, "main") for name in _request_names(args)]
        _store(engine, "---\n".join(fleet), "fleet.yaml")
        try:
            emulator.wait_ready(0.0)
            async with DokployClient(emulator.url, API_KEY, timeout=30.0) as client:
                runtime = Runtime(
                    database=engine,
                    settings=settings,
                    providers={"dokploy": client, HEALTH: HealthChecks(healthy)},
                    kinds=all_kinds,
                    actor="bench",
                )
                await _converge(runtime)
                _stick(engine, emulator)
                result = await _run(args, runtime, emulator)
            emulator_cpu = emulator.cpu_seconds()
        finally:
            emulator.close()
    _print(args, settings, result, emulator_cpu)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _print(
    args: argparse.Namespace, settings: Settings, result: dict[str, Any], emulator_cpu: float
) -> None:
    latencies = [total for total, _ in result["latencies"]]
    planned = [plan for _, plan in result["latencies"]]
    in_flight = [s.in_flight for s in result["samples"]]
    p99 = _percentile(latencies, 0.99)
    print(
        f"{'PostgreSQL' if args.postgres else 'SQLite'}; {args.load} lanes per wave + 1 stuck, {args.build_seconds:g} s builds, {args.waves} "
        f"waves, {len(latencies)} requests {args.spacing:g} s apart; {settings.loop_workers} "
        f"workers x batch {settings.loop_batch_size}; {platform.machine()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("| request to apply start | median | p99 | max | lanes claimed at the request |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| {len(latencies)} requests | {statistics.median(latencies):.3f} s | {p99:.3f} s | "
        f"{max(latencies):.3f} s | median {statistics.median(in_flight):.0f}, "
        f"min {min(in_flight)}, max {max(in_flight)} |"
    )
    print(
        f"| of which until its plan was computed | {statistics.median(planned):.3f} s | "
        f"{_percentile(planned, 0.99):.3f} s | {max(planned):.3f} s | |"
    )
    print(
        f"wall {result['wall']:.1f} s; CPU: Setpoint {result['cpu']:.1f} s, emulator "
        f"{emulator_cpu:.1f} s (whole run); target p99 < {TARGET_P99_SECONDS:g} s: "
        f"{'met' if p99 < TARGET_P99_SECONDS else 'NOT met'}"
    )


if __name__ == "__main__":
    anyio.run(main, _args())
