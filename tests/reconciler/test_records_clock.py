"""An apply's records carry the runtime's time, not the wall clock's (issue 24).

The runtime's clock here runs a day ahead of the wall clock, so a record stamped by anything
but `Runtime.now()` lands a day before the window the test allows. A kind defined here
(one lane, one action) looks at its lane's lease while the action runs, as only it can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from reconciler.core.apply import apply_plan
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.outcomes import Done, Outcome
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Action, BlastRadiusGuard, Effect, Risk, lane_key
from reconciler.core.reasons import BlockerReason
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import (
    LaneDiff,
    LaneKind,
    Observation,
    OpSpec,
    ProposedAction,
    op_table,
)
from reconciler.records import audit, leases, plan_store, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.leases import LaneLease
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.settings import Settings
from tests.support.toy_policy import AllowingPolicy

AHEAD = timedelta(days=1)
STAMP = "stamp"
LANE = lane_key(STAMP, "one")


@dataclass
class StampExecutor:
    engine: Engine
    leases_seen: list[LaneLease]

    async def execute(self, action: Action) -> Outcome:
        lease = leases.current(self.engine, action.lane)
        assert lease is not None  # the engine holds the lane while its action runs
        self.leases_seen.append(lease)
        return Done("stamped")


@dataclass
class StampKind:
    leases_seen: list[LaneLease]
    name: str = STAMP
    ops: Mapping[str, OpSpec] = field(
        default_factory=lambda: op_table(OpSpec("stamp", 0, Effect.run, Risk.safe))
    )
    guard: BlastRadiusGuard = field(default_factory=lambda: BlastRadiusGuard(5, 1.0))
    reasons: Mapping[str, BlockerReason] = field(default_factory=dict)

    def lanes(self) -> list[str]:
        return [LANE]

    def policy(self, lane: str) -> AllowingPolicy:
        return AllowingPolicy()

    async def preflight(self) -> str | None:
        return None

    async def observe(self, lanes: Sequence[str]) -> Observation:
        seen = Observation()
        for lane in lanes:
            seen.fingerprint(lane, f"stamp:{lane}", "unstamped")
        return seen

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        result = LaneDiff(lane=lane)
        result.actions.append(ProposedAction("stamp", "stamp", f"stamp/{lane}", "unstamped"))
        return result

    def executor(self, runtime: Runtime) -> StampExecutor:
        return StampExecutor(runtime.database, self.leases_seen)


async def test_an_apply_stamps_its_audit_plan_lease_and_status_with_the_runtimes_clock(
    engine: Engine,
) -> None:
    clock = ShiftedClock(offset=AHEAD.total_seconds())
    seen: list[LaneLease] = []

    def kinds(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> list[LaneKind]:
        return [StampKind(seen)]

    runtime = Runtime(
        database=engine,
        settings=Settings(database_url="sqlite://"),
        actor="test-operator",
        kinds=kinds,
        clock=clock,
    )
    before = clock.now()
    plan = await compute_plan(runtime, [LANE])
    result = await apply_plan(runtime, plan.plan_id)
    after = clock.now()
    assert result.status == "applied"

    def on_the_runtimes_clock(moment: datetime) -> bool:
        return before <= moment <= after

    with session_scope(engine) as session:
        records = audit.list_records(session, plan_id=plan.plan_id)
    events = {record.event for record in records}
    assert {AuditEvent.plan_computed, AuditEvent.apply_started, AuditEvent.apply_finished} <= events
    assert {AuditEvent.action_intent, AuditEvent.action_result} <= events  # the journal's
    assert [r.event for r in records if not on_the_runtimes_clock(r.at)] == []

    (stored,) = plan_store.summaries(engine)
    assert on_the_runtimes_clock(stored.created_at)
    (lease,) = seen
    assert on_the_runtimes_clock(lease.acquired_at)
    (row,) = status.all_statuses(engine)
    assert on_the_runtimes_clock(row.updated_at)
