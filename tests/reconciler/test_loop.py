"""Scheduled passes apply only what lane policy allows; everything else waits for an operator."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from providers.dokploy.emulator import Emulator
from reconciler.loop.passes import reconcile_pass
from reconciler.records.audit import AuditRecord
from reconciler.records.plan_store import StoredPlan
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy


async def test_a_pass_applies_auto_safe_lanes_and_leaves_manual_ones(
    runtime: Runtime, emulator: Emulator
) -> None:
    first = await reconcile_pass(runtime)
    outcomes = {r.lane: r.outcome for r in first.lanes}
    assert outcomes == {
        "product:docs-site/testing": "applied",
        "product:ledger/testing": "applied",
        "product:shop/testing": "applied",
        "product:docs-site/prod": "awaiting_operator",
        "product:ledger/prod": "awaiting_operator",
        "product:shop/prod": "awaiting_operator",
    }
    names = emulator.summary()["applications"] + emulator.summary()["compose"]
    assert "shop-testing" in names and "shop-prod" not in names

    second = await reconcile_pass(runtime)
    again = {r.lane: r.outcome for r in second.lanes}
    assert again["product:shop/testing"] == "converged"
    assert again["product:shop/prod"] == "awaiting_operator"


async def test_a_blocked_lane_does_not_hold_up_the_others(
    runtime: Runtime, emulator: Emulator
) -> None:
    created = await dokploy(runtime).project_create("docs")
    environment = await dokploy(runtime).environment_create(created.project.project_id, "testing")
    await dokploy(runtime).application_create("docs-site-testing", environment.environment_id)
    report = await reconcile_pass(runtime)
    outcomes = {r.lane: r.outcome for r in report.lanes}
    assert outcomes["product:docs-site/testing"] == "blocked"
    assert outcomes["product:shop/testing"] == "applied"


async def test_a_scheduler_keeps_one_live_plan_per_lane_and_never_retires_an_operators(
    runtime: Runtime,
) -> None:
    from reconciler.core.planning import compute_plan
    from reconciler.records import plan_store

    operator_plan = await compute_plan(runtime, ["product:shop/prod"])
    runtime.actor = "scheduler"
    first = await reconcile_pass(runtime)
    second = await reconcile_pass(runtime)
    old = next(r.plan_id for r in first.lanes if r.lane == "product:shop/prod")
    new = next(r.plan_id for r in second.lanes if r.lane == "product:shop/prod")
    assert plan_store.load(runtime.database, old)[1] == "superseded"
    assert plan_store.load(runtime.database, new)[1] == "pending"
    assert plan_store.load(runtime.database, operator_plan.plan_id)[1] == "pending"


async def test_a_quiet_fleet_pass_reads_once_and_writes_one_record(
    runtime: Runtime, engine: Engine
) -> None:
    from reconciler.core.apply import apply_plan
    from reconciler.core.planning import compute_plan

    assert (await apply_plan(runtime, (await compute_plan(runtime)).plan_id)).ok
    await reconcile_pass(runtime)  # settles the status rows once
    calls: list[str] = []

    async def count(request: httpx.Request) -> None:
        calls.append(request.url.path.rsplit("/", 1)[-1])

    dokploy(runtime)._http.event_hooks["request"].append(count)
    plans, records, statuses = _plans(engine), _records(engine), _status_times(engine)
    report = await reconcile_pass(runtime)
    assert {r.outcome for r in report.lanes} == {"converged"}
    assert _plans(engine) == plans, "a quiet pass stores no plan"
    assert [r.event for r in _records(engine)[len(records) :]] == ["pass_completed"]
    assert _status_times(engine) == statuses, "no condition changed, so no row was written"
    # One preflight, one listing, one read per owned service: 2 + 1 per lane.
    assert calls.count("user.get") == 1 and calls.count("project.all") == 1
    assert len(calls) == 2 + len(report.lanes)
    assert set(calls) == {"user.get", "project.all", "application.one", "compose.one"}


async def test_a_lane_awaiting_an_operator_is_not_planned_again_each_pass(
    runtime: Runtime, engine: Engine
) -> None:
    runtime.actor = "scheduler"
    await reconcile_pass(runtime)
    second = await reconcile_pass(runtime)
    plans = _plans(engine)
    third = await reconcile_pass(runtime)
    assert _plans(engine) == plans, "the same waiting plan is not stored again"
    waiting = {r.lane: r.plan_id for r in second.lanes if r.outcome == "awaiting_operator"}
    assert waiting and waiting == {
        r.lane: r.plan_id for r in third.lanes if r.outcome == "awaiting_operator"
    }


def _plans(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return sorted((p.id, p.status) for p in session.exec(select(StoredPlan)).all())


def _records(engine: Engine) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(session.exec(select(AuditRecord).order_by(col(AuditRecord.seq))).all())


def _status_times(engine: Engine) -> dict[str, object]:
    return {row.lane: row.updated_at for row in all_statuses(engine)}
