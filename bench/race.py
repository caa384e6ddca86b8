"""Setpoint against a naive sequential client, on the same emulator, in one run (issue 26).

The first apply of a fleet from an empty Dokploy, then a no-op scheduled pass over it
(`reconcile_pass`): each timed (wall and CPU seconds of this process), then the naive client
written here (bench/fleet.py's `replay_one_at_a_time`) sends the very same requests one at a
time, with no concurrency, sitting out each build: the first apply on a second emulator
started alike (same seed, so the ids it hands out match), the pass on the first one. Both
sides run in one process and one run, so the ratio is measured, not assembled from runs
on a machine whose load moves. The naive client does less than Setpoint: no plan, no audit,
no read-back or checks; its CPU is that of sending the requests alone.

    uv run python bench/race.py                      # 200 lanes, 20 ms per call, 0.2 s builds
    uv run python bench/race.py --lanes 4 --latency 0 --build-seconds 0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fleet import (  # bench/fleet.py, beside this file
    API_KEY,
    Fleet,
    RecordingTransport,
    apply_concurrency,
    emulators,
    first_apply,
    healthy,
    noop_pass,
    observe_concurrency,
    settings_for,
    stored_fleet,
)

from providers.dokploy.client import DokployClient
from reconciler.kinds import all_kinds, with_health_probe
from reconciler.runtime import Runtime


@dataclass(frozen=True)
class Heat:
    """One figure, both sides."""

    figure: str
    calls: int
    setpoint_wall_s: float
    setpoint_cpu_s: float
    naive_wall_s: float
    naive_cpu_s: float
    naive_failed: int

    @property
    def wall_ratio(self) -> float:
        return self.setpoint_wall_s / self.naive_wall_s if self.naive_wall_s else float("nan")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lanes", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per Dokploy call")
    parser.add_argument("--build-seconds", type=float, default=0.2)
    parser.add_argument("--deploy-poll-seconds", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the heats here too")
    return parser


async def race(args: argparse.Namespace) -> list[Heat]:
    # bench/fleet.py's knobs this race does not vary
    args.env_keys, args.domains, args.profile = 1, 1, None
    args.apply_concurrency = args.observe_concurrency = None
    with (
        emulators(2, build_seconds=args.build_seconds) as served,
        stored_fleet(args, args.lanes) as engine,
    ):
        for each in served:
            each.wait_ready(args.latency)
        recorder = RecordingTransport()
        async with DokployClient(served[0].url, API_KEY, transport=recorder) as client:
            runtime = Runtime(
                database=engine,
                settings=settings_for(args),
                providers=with_health_probe({"dokploy": client}, healthy),
                kinds=all_kinds,
                actor="bench",
            )
            fleet = Fleet(args.lanes, runtime, recorder, served[0], served[1])
            apply_c, _ = apply_concurrency(runtime.settings, None)
            observe_c, _ = observe_concurrency(None)
            applied = await first_apply(fleet, args, apply_c)
            passed = await noop_pass(fleet, "reconcile_pass", args, observe_c)
    return [
        Heat(
            "first apply",
            applied.calls,
            applied.wall_s,
            applied.cpu_s,
            applied.naive_s,
            applied.naive_cpu_s,
            applied.naive_failed,
        ),
        Heat(
            "no-op pass",
            passed.calls,
            passed.wall_s,
            passed.cpu_s,
            passed.naive_s,
            passed.naive_cpu_s,
            passed.naive_failed,
        ),
    ]


def render(args: argparse.Namespace, heats: Sequence[Heat]) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"{args.lanes} lanes, {args.latency * 1000:g} ms per call, builds "
        f"{args.build_seconds:g} s; {os.cpu_count()} CPUs, load average {load}",
        "",
        "| figure | calls | Setpoint wall | Setpoint CPU | naive wall | naive CPU "
        "| wall: Setpoint / naive |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {h.figure} | {h.calls} | {h.setpoint_wall_s:.2f} s | {h.setpoint_cpu_s:.2f} s "
        f"| {h.naive_wall_s:.2f} s | {h.naive_cpu_s:.2f} s | {h.wall_ratio:.2f}x |"
        for h in heats
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    heats = anyio.run(race, args)
    print(render(args, heats))
    print(f"\n(the race took {time.perf_counter() - started:.1f} s of wall time)")
    if args.json is not None:
        rows: list[dict[str, Any]] = [{**h.__dict__, "wall_ratio": h.wall_ratio} for h in heats]
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
