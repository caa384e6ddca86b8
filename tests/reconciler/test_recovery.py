"""A worker that dies mid-apply: its plan is interrupted, its lanes free, with no manual step."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.core.recovery import release_lease
from reconciler.errors import LeaseHeld, LeaseNotFound
from reconciler.records import leases, plan_store
from reconciler.records.audit import AuditRecord
from reconciler.records.plan_store import PlanStatus
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, utcnow
from tests.support.processes import crash_mid_apply

LANE = "product:docs-site/testing"


def _events(engine: Engine, event: str) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(session.exec(select(AuditRecord).where(AuditRecord.event == event)).all())


async def test_the_next_plan_finds_the_dead_workers_plan_and_frees_its_lanes(
    runtime: Runtime, engine: Engine
) -> None:
    crashed = await compute_plan(runtime, [LANE])
    crash_mid_apply(engine, crashed.plan_id, [LANE])
    plan = await compute_plan(runtime, [LANE])
    assert plan_store.load(engine, crashed.plan_id)[1] is PlanStatus.interrupted
    assert leases.current(engine, LANE) is None
    [record] = _events(engine, "apply_interrupted")
    assert record.plan_id == crashed.plan_id and "ci:crashed" in record.data["holder"]
    # The status said so until the new plan took over the lane.
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, result
    assert (await compute_plan(runtime, [LANE])).actions == []


async def test_an_interrupted_plan_is_refused_and_stays_interrupted(
    runtime: Runtime, engine: Engine
) -> None:
    crashed = await compute_plan(runtime, [LANE])
    crash_mid_apply(engine, crashed.plan_id, [LANE])
    result = await apply_plan(runtime, crashed.plan_id)
    assert result.refusal is not None and result.refusal.type == BlockerType.stale_plan
    assert "interrupted" in result.refusal.message
    assert plan_store.load(engine, crashed.plan_id)[1] is PlanStatus.interrupted
    [row] = [r for r in all_statuses(engine) if r.lane == LANE]
    stalled = next(c for c in row.conditions if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "Interrupted"
    assert "is gone" in stalled["message"]


async def test_an_operator_releases_a_lease_and_it_is_audited(
    runtime: Runtime, engine: Engine
) -> None:
    with pytest.raises(LeaseNotFound):
        release_lease(engine, "ops@example", LANE, runtime.now(), force=False)
    live = leases.take_all(
        engine, [LANE], leases.Holder("worker", plan_id="p-live"), 60, clock=utcnow
    )
    with pytest.raises(LeaseHeld, match="still alive"):
        release_lease(engine, "ops@example", LANE, runtime.now(), force=False)
    released = release_lease(engine, "ops@example", LANE, runtime.now(), force=True)
    assert released.holder == "worker"
    assert leases.current(engine, LANE) is None
    [record] = _events(engine, "lease_released")
    assert record.actor == "ops@example" and record.data["holder_alive"] is True
    with pytest.raises(Exception, match="lost"):
        live.renew()
