"""The loop engine's scheduled pass over a converged fleet, against its lower bound (issue 15).

Target: "a scheduled pass over 1,000 converged lanes stays within 1.5x of the lower bound
for its calls". The lower bound is what one observation of the fleet needs: one preflight,
one listing and one detail read per owned service (2 + lanes, for the product kind). The
loop claims lanes in batches and observes each batch once, so it pays the preflight and the
listing once per batch: 2 x batches + lanes.

The Dokploy emulator runs in a child process on loopback (bench/fleet.py's), with a per-call
latency; Setpoint's client records every request it sends. The fleet is converged untimed,
then `LoopEngine.run_once` (what `setpoint run --once` runs) is timed, and beside it the
single-process `reconcile_pass` it replaces. Wall time stands beside its own lower bound,
(lower-bound calls / read concurrency) x latency.

    uv run python bench/loop_pass.py                      # 1,000 lanes, 5 ms per call
    uv run python bench/loop_pass.py --lanes 200 --latency 0.01
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from typing import Any

import anyio
from fleet import (  # bench/fleet.py, beside this file
    API_KEY,
    EmulatorProcess,
    RecordingTransport,
    healthy,
    observe_concurrency,
    stored_fleet,
)

from providers.dokploy.client import DokployClient
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.loop.engine import LoopEngine
from reconciler.loop.passes import reconcile_pass
from reconciler.runtime import Runtime
from reconciler.settings import Settings


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lanes", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.005, help="seconds per Dokploy call")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    # stored_fleet's knobs (one env key, one domain per lane, as bench/fleet.py's defaults)
    args.env_keys, args.domains = 1, 1
    return args


async def _converge(
    runtime: Runtime, emulator: EmulatorProcess, recorder: RecordingTransport
) -> None:
    emulator.set_latency(0.0)
    result = await apply_plan(runtime, (await compute_plan(runtime)).plan_id)
    if not result.ok:
        raise SystemExit(f"could not converge the fleet: {result.status}")
    await reconcile_pass(runtime)  # settles the status rows once
    recorder.take()


async def _timed(name: str, run: Any, recorder: RecordingTransport) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    report = await run()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    calls = recorder.take()
    outcomes = Counter(r.outcome for r in report.lanes)
    if set(outcomes) != {"converged"}:
        raise SystemExit(f"{name}: the pass over a converged fleet was not quiet: {outcomes}")
    return {
        "entry": name,
        "calls": len(calls),
        "wall": wall,
        "cpu": cpu,  # this process: Setpoint's own CPU (the emulator runs in a child)
        "by": Counter(c.procedure for c in calls),
    }


async def main(args: argparse.Namespace) -> None:
    overrides: dict[str, Any] = {}
    if args.batch_size:
        overrides["loop_batch_size"] = args.batch_size
    if args.workers:
        overrides["loop_workers"] = args.workers
    settings = Settings(**overrides)
    emulator = EmulatorProcess(build_seconds=0.0)
    try:
        with stored_fleet(args, args.lanes) as engine:
            emulator.wait_ready(0.0)
            recorder = RecordingTransport()
            async with DokployClient(emulator.url, API_KEY, transport=recorder) as client:
                runtime = Runtime(
                    database=engine,
                    settings=settings,
                    providers={"dokploy": client, HEALTH: HealthChecks(healthy)},
                    kinds=all_kinds,
                    actor="bench",
                )
                await _converge(runtime, emulator, recorder)
                emulator.set_latency(args.latency)
                rows = [
                    await _timed("LoopEngine.run_once", LoopEngine(runtime).run_once, recorder),
                    await _timed("reconcile_pass", lambda: reconcile_pass(runtime), recorder),
                ]
    finally:
        emulator.close()
    _print(args, settings, rows)


def _print(args: argparse.Namespace, settings: Settings, rows: list[dict[str, Any]]) -> None:
    bound_calls = 2 + args.lanes
    concurrency, source = observe_concurrency(None)
    bound_wall = bound_calls / concurrency * args.latency
    print(
        f"{args.lanes} lanes, {args.latency * 1000:g} ms per call, batch {settings.loop_batch_size},"
        f" {settings.loop_workers} workers; {platform.machine()} {platform.python_version()}\n"
        f"lower bound: {bound_calls} calls; wall {bound_wall:.2f} s"
        f" ({concurrency} reads in flight, {source}); load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(
        "| entry | calls | calls / lower bound | wall | wall / lower bound | CPU "
        "| calls by procedure |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        by = ", ".join(f"{p} {n}" for p, n in row["by"].most_common())
        print(
            f"| {row['entry']} | {row['calls']} | {row['calls'] / bound_calls:.3f}x"
            f" | {row['wall']:.2f} s | {row['wall'] / bound_wall:.2f}x | {row['cpu']:.2f} s"
            f" | {by} |"
        )
    loop, single = rows
    print(
        f"\nloop / single pass: CPU {loop['cpu'] / single['cpu']:.2f}x, wall"
        f" {loop['wall'] / single['wall']:.2f}x (target: loop CPU at most 1.2x)"
    )


if __name__ == "__main__":
    anyio.run(main, _args())
