"""The runner kind's listings. `setpoint runners list`: every runner in the pools' scopes,
managed or not, as GitHub and the hosts answer now; a managed runner is shown with its lane
and process, any other runner in a pool's scope as unmanaged (Setpoint never touches it),
labels and all. The runners page: each lane's registration and its GitHub status as the
last survey recorded it, from the records alone. Reads only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers.github.errors import GitHubError
from providers.github.models import RunnerScope
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import KindListing, LaneKind
from reconciler.kinds.runner.kind import RunnerKind
from reconciler.kinds.runner.lanes import KIND, pool_and_slot
from reconciler.kinds.runner.observed import (
    GITHUB_BUSY,
    GITHUB_STATUS,
    RUNNER_TYPE,
    ObservedRunnerLane,
)


@dataclass(frozen=True)
class RunnerRow:
    name: str
    scope: str
    managed: bool
    status: str  # online, offline, unregistered (a process with no registration), unknown
    busy: bool | None = None
    pool: str | None = None
    lane: str | None = None
    host: str | None = None
    process: str | None = None  # running, stopped, failed; None: none or not ours to see
    runner_id: int | None = None
    labels: list[str] = field(default_factory=list)
    problem: str | None = None


def _managed(lane: str, seen: ObservedRunnerLane) -> RunnerRow | None:
    runner, process = seen.runner, seen.process
    if runner is None and process is None:
        return None  # an empty slot
    return RunnerRow(
        name=runner.name if runner else process.name if process else "",
        scope=seen.scope,
        managed=True,
        status=runner.status if runner else "unregistered",
        busy=seen.busy,
        pool=pool_and_slot(lane)[0],
        lane=lane,
        host=seen.host,
        process=process.state.value if process else None,
        runner_id=runner.id if runner else None,
        labels=list(runner.labels) if runner else [],
    )


async def runner_rows(kind: RunnerKind) -> list[RunnerRow]:
    lanes = kind.lanes()
    observation = await kind.observe(lanes)
    rows: list[RunnerRow] = []
    managed_ids: set[int] = set()
    for lane in lanes:
        seen = observation.lanes.get(lane)
        if isinstance(seen, ObservedRunnerLane):
            row = _managed(lane, seen)
            if row is not None:
                rows.append(row)
                managed_ids.update([row.runner_id] if row.runner_id is not None else [])
    for problem in observation.problems:
        rows.append(
            RunnerRow(
                name="?",
                scope="?",
                managed=True,
                status="unknown",
                lane=problem.lane,
                problem=problem.reason,
            )
        )
    for scope in sorted({pool.scope for pool in kind.pools.values()}):
        rows.extend(await _unmanaged(kind, scope, managed_ids))
    return rows


async def _unmanaged(kind: RunnerKind, scope: str, managed: set[int]) -> list[RunnerRow]:
    try:
        listed = await kind.github.list_runners(RunnerScope.parse(scope))
    except (GitHubError, ValueError) as exc:
        return [RunnerRow(name="?", scope=scope, managed=False, status="unknown", problem=str(exc))]
    return [
        RunnerRow(
            name=r.name,
            scope=scope,
            managed=False,
            status=r.status,
            busy=r.busy,
            runner_id=r.id,
            labels=r.label_names,
        )
        for r in listed
        if r.id not in managed
    ]


async def runner_listing(kind: LaneKind) -> list[dict[str, Any]]:
    """`KindListing.from_providers`: every runner in the pools' scopes, as GitHub answers."""
    assert isinstance(kind, RunnerKind), kind.name
    return [dataclasses.asdict(row) for row in await runner_rows(kind)]


def runner_registrations(
    fleet: DesiredFleet, owned: OwnershipSnapshot, now: datetime
) -> list[dict[str, Any]]:
    """`KindListing.from_records`: each lane's registration with its status on GitHub as the
    last survey recorded it (None: not seen since it was made)."""
    return [
        {
            "lane": lane,
            "runner": item.name,
            "runnerId": int(item.object_id),
            "githubStatus": item.facts.get(GITHUB_STATUS),
            "busy": item.facts.get(GITHUB_BUSY),
        }
        for lane in sorted(owned.lanes_of_kind(KIND))
        for item in owned.for_lane(lane)
        if item.object_type == RUNNER_TYPE
    ]


RUNNER_LISTING = KindListing(
    kind=KIND,
    plural="runners",
    from_records=runner_registrations,
    from_providers=runner_listing,
)
