"""Health that keeps watching: converged lanes are checked again every interval.

A scheduled pass hands its quiet lanes (converged, nothing to apply) here. For each lane a
kind watches (`WatchingKind.health_watch`), the check runs when the lane's last verdict is
older than its interval or was about another configuration; the verdicts are recorded
(`records/lane_health`), and a lane whose latest verdict fails is shown Degraded, with the
check's answer, until a check passes again. A turn either way is audited (and is what
notifications tell of). A check changes nothing outside, so it needs no plan and no opt-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import anyio

from reconciler.kinds.base import HealthVerdict, HealthWatch, WatchingKind
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import audit, lane_health, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.records.lane_health import Checked, LaneHealth, Transition
from reconciler.runtime import Runtime


@dataclass
class Watched:
    """What the watch concluded about a pass's quiet lanes."""

    failing: dict[str, LaneHealth] = field(default_factory=dict)  # lane -> its verdict
    turned: list[Transition] = field(default_factory=list)
    checked: int = 0


def degraded_message(row: LaneHealth) -> str:
    since = f"{row.failing_since:%Y-%m-%d %H:%M:%S} UTC" if row.failing_since else "now"
    return (
        f"health check {row.check_url} failed: {row.reason} "
        f"({row.failures} check(s) since {since}; nothing was changed)"
    )


def known_failing(
    runtime: Runtime, registry: LaneRegistry, lanes: Sequence[str]
) -> dict[str, LaneHealth]:
    """The watched lanes among `lanes` whose recorded verdict (about what they run now)
    fails: read only, no check is run (a pass records its quiet lanes with it, so a
    Degraded lane stays Degraded between checks)."""
    watches = _watches(registry, lanes)
    known = lane_health.latest(runtime.database, list(watches)) if watches else {}
    return {
        lane: row for lane, row in known.items() if not row.ok and row.basis == watches[lane].basis
    }


async def watch_health(runtime: Runtime, registry: LaneRegistry, lanes: Sequence[str]) -> Watched:
    """Check the due lanes among `lanes` (converged ones); record the verdicts, audit the
    turns, and move the status of each lane that turned. Runs when the pass's lanes are
    done, so no lane waits for a check."""
    watches = _watches(registry, lanes)
    if not watches:
        return Watched()
    now = runtime.now()
    known = await in_thread(lane_health.latest, runtime.database, list(watches))
    due = [lane for lane, watch in watches.items() if _due(known.get(lane), watch, now)]
    verdicts = await _check_all(runtime, registry, due)
    checked = [
        Checked(lane, watches[lane].basis, v.ok, v.check, v.status, v.reason)
        for lane, v in verdicts.items()
    ]
    turned = await in_thread(_record, runtime, registry, checked, now)
    failing = await in_thread(known_failing, runtime, registry, list(watches))
    return Watched(failing=failing, turned=turned, checked=len(checked))


def _watches(registry: LaneRegistry, lanes: Sequence[str]) -> dict[str, HealthWatch]:
    watches: dict[str, HealthWatch] = {}
    for kind, kind_lanes in registry.grouped(lanes):
        if not isinstance(kind, WatchingKind):
            continue
        for lane in kind_lanes:
            watch = kind.health_watch(lane)
            if watch is not None:
                watches[lane] = watch
    return watches


def _due(row: LaneHealth | None, watch: HealthWatch, now: datetime) -> bool:
    if row is None or row.basis != watch.basis:
        return True
    return (now - row.checked_at).total_seconds() >= watch.interval


async def _check_all(
    runtime: Runtime, registry: LaneRegistry, lanes: Sequence[str]
) -> dict[str, HealthVerdict]:
    verdicts: dict[str, HealthVerdict] = {}
    limiter = anyio.CapacityLimiter(runtime.settings.apply_concurrency)

    async def check(lane: str) -> None:
        kind = registry.kind_of(lane)
        assert isinstance(kind, WatchingKind)
        async with limiter:
            verdicts[lane] = await kind.check_health(runtime, lane)

    async with anyio.create_task_group() as group:
        for lane in lanes:
            group.start_soon(check, lane)
    return verdicts


def _record(
    runtime: Runtime, registry: LaneRegistry, checked: list[Checked], now: datetime
) -> list[Transition]:
    turned = lane_health.record_checks(runtime.database, checked, now)
    status.record_all(
        runtime.database,
        [
            status.StatusUpdate(
                t.lane,
                status.degraded(degraded_message(t.row))
                if t.became == "degraded"
                else status.converged(),
                observed_generation=registry.generation(t.lane),
            )
            for t in turned
        ],
        now=now,
    )
    for transition in turned:
        row = transition.row
        audit.record(
            runtime.database,
            event=AuditEvent.lane_degraded
            if transition.became == "degraded"
            else AuditEvent.lane_recovered,
            actor=runtime.actor,
            lane=transition.lane,
            data={
                "check": row.check_url,
                "ok": row.ok,
                "status": row.status_code,
                "reason": row.reason,
                "basis": row.basis,
            },
            at=now,
        )
    return turned
