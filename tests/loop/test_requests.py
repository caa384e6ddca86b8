"""Requested reconciles: an operation goes running, gets a plan made for a workflow, is
applied only when asked and allowed, and ends with the plan id and the real result."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.records import audit, leases, operations
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.operations import Operation, OperationRequest
from reconciler.records.work_queue import WorkPriority, enqueue
from reconciler.runtime import Runtime, ShiftedClock, utcnow
from tests.loop.replicas import fleet_yaml, store_fleet_text
from tests.loop.support import fast_engine
from tests.support.workflow_requests import operation_of, request_lane


async def test_operations_end_with_their_plan_and_what_came_of_it(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    applied = request_lane(engine, "product:shop/testing", apply=True)
    planned = request_lane(engine, "product:ledger/testing", apply=False)
    refused = request_lane(engine, "product:shop/prod", apply=True)  # manual policy
    await fast_engine(runtime).run_once()

    done = operation_of(engine, applied)
    assert (done.status, done.phase) == ("succeeded", "done")
    assert done.plan_id and done.result and done.result["outcome"] == "applied"
    assert {a["result"] for a in done.result["actions"]} == {"ok"}
    assert "shop-testing" in emulator.summary()["applications"]

    only_planned = operation_of(engine, planned)
    assert only_planned.status == "succeeded" and only_planned.result
    assert only_planned.result["outcome"] == "planned"
    assert "setpoint apply" in only_planned.result["detail"]
    assert "ledger-testing" not in str(emulator.summary())

    blocked = operation_of(engine, refused)
    assert blocked.status == "blocked" and blocked.result and blocked.plan_id
    assert blocked.result["outcome"] == "refused"
    assert "manual" in blocked.result["refusal"]
    assert "shop-prod" not in emulator.summary()["applications"]


async def test_a_request_for_a_converged_lane_succeeds_without_changes(
    runtime: Runtime, engine: Engine
) -> None:
    await fast_engine(runtime).run_once()
    again = request_lane(engine, "product:shop/testing", apply=True)
    await fast_engine(runtime).run_once()
    done = operation_of(engine, again)
    assert done.status == "succeeded" and done.result == {
        "plan_id": done.plan_id,
        "actions": 0,
        "outcome": "converged",
    }


async def test_a_request_for_a_lane_nobody_declares_fails_with_why(
    runtime: Runtime, engine: Engine
) -> None:
    gone = request_lane(engine, "product:nowhere/testing", apply=True)
    await fast_engine(runtime).run_once()
    failed = operation_of(engine, gone)
    assert failed.status == "failed" and failed.error
    assert "not in the desired state" in failed.error


async def test_two_requests_for_lanes_that_share_a_project_both_end_applied(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    """Both plans come from one survey and both would create the project: the second apply
    finds its plan stale, and the lane is planned once more instead of failing its caller."""
    store_fleet_text(engine, fleet_yaml(1))  # p000: two auto-safe lanes, one project
    first = request_lane(engine, "product:p000/testing", apply=True)
    second = request_lane(engine, "product:p000/staging", apply=True)
    await fast_engine(runtime).run_once()
    for operation_id in (first, second):
        done = operation_of(engine, operation_id)
        assert done.status == "succeeded" and done.result, done
        assert done.result["outcome"] == "applied"
    projects = [p["name"] for p in emulator.state.projects.values()]
    assert projects.count("p000") == 1


def _asked(
    engine: Engine, lane: str, *, actor: str, reason: str | None = None, apply: bool = True
) -> Operation:
    with session_scope(engine) as session:
        reserved = operations.reserve(
            session,
            OperationRequest(
                lane=lane,
                requester=f"github:1:{actor}",
                body_digest=hashlib.sha256(f"{lane}:{actor}".encode()).hexdigest(),
                apply_requested=apply,
                actor=actor,
                reason=reason,
            ),
            utcnow(),
        )
        enqueue(session, [lane], WorkPriority.workflow, "workflow request", utcnow())
    return reserved.operation


async def test_a_workflows_apply_is_audited_under_the_workflow_with_its_operation_and_reason(
    runtime: Runtime, engine: Engine
) -> None:
    """Issue 23, items 5 and 6: not under the scheduler that ran it."""
    workflow = "workflow:acme/shop:.github/workflows/build.yml@refs/heads/main run 4242"
    asked = _asked(engine, "product:shop/testing", actor=workflow, reason="image 1.4.2 built")
    await fast_engine(runtime).run_once()

    done = operation_of(engine, asked.id)
    assert done.status == "succeeded" and done.plan_id
    with session_scope(engine) as session:
        records = audit.list_records(session, plan_id=done.plan_id)
    applying = [r for r in records if r.event != AuditEvent.plan_computed]
    assert applying, "the apply wrote its records"
    assert {r.actor for r in applying} == {workflow}
    for record in applying:
        assert record.data["operations"] == [asked.id]
        assert record.data["reason"] == "image 1.4.2 built"


async def test_a_request_that_comes_while_another_waits_is_merged_and_says_so(
    runtime: Runtime, engine: Engine
) -> None:
    """Issue 23, item 7: one plan covers both; the second's answer names the first, and both
    end with that plan's result."""
    first = _asked(engine, "product:shop/testing", actor="workflow:a")
    second = _asked(engine, "product:shop/testing", actor="workflow:b", reason="retry")
    other_lane = _asked(engine, "product:ledger/testing", actor="workflow:c")
    assert first.merged_into is None and other_lane.merged_into is None
    assert second.merged_into == first.id

    await fast_engine(runtime).run_once()
    one, two = operation_of(engine, first.id), operation_of(engine, second.id)
    assert one.status == two.status == "succeeded"
    assert one.plan_id == two.plan_id and one.result == two.result
    assert two.merged_into == first.id


async def test_a_requested_deploy_that_fails_carries_dokploys_evidence_in_its_result(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    """Issue 27: what Dokploy said about the failed deploy is in the operation's result."""
    emulator.faults.fail_next_deploy(count=10)  # the pass deploys other lanes too
    operation_id = request_lane(engine, "product:shop/testing", apply=True)
    await fast_engine(runtime).run_once()
    result = operation_of(engine, operation_id).result or {}
    deploy = next(a for a in result["actions"] if a["op"] == "deploy")
    assert deploy["result"] == "retry"
    evidence = deploy["evidence"]
    assert evidence["status"] == "error" and evidence["log_tail"][-1] == "❌ Pulling image failed"


async def test_a_request_whose_lane_another_apply_still_holds_is_planned_again_and_applied(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    """Another apply still holds the lane's lease when the request's apply comes (a scheduled
    plan writing its last records after the lane's own actions were done): the request is
    surveyed and planned once more, and applied, rather than refused `lane_busy`."""
    lane = "product:shop/testing"
    finishing = leases.Holder(label="test-operator:plan-finishing")
    assert leases.take(engine, lane, finishing, 60.0, clock=runtime.now)[0]
    looks: list[str] = []

    def progress(message: str) -> None:  # the other apply ends before the lane's second look
        if message == "observing 1 lane(s)":  # the request is surveyed alone
            looks.append(message)
            if len(looks) == 2:
                leases.release(engine, lane, finishing)

    asked = request_lane(engine, lane, apply=True)
    await fast_engine(replace(runtime, progress=progress)).run_once()
    done = operation_of(engine, asked)
    assert done.status == "succeeded" and done.result, done
    assert done.result["outcome"] == "applied"
    assert "shop-testing" in emulator.summary()["applications"]


async def test_a_request_whose_lane_stays_held_waits_for_it_and_is_applied_once_it_is_free(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    """Another apply holds the lane through both of the request's looks (a long apply of
    the scheduled pass): the request is not refused for another's work. It goes back to the
    queue, its lane backs off, and the lane's next look once it is free applies it."""
    lane = "product:shop/testing"
    holder = leases.Holder(label="test-operator:plan-long")
    assert leases.take(engine, lane, holder, 600.0, clock=runtime.now)[0]
    clock = ShiftedClock()
    waiting_runtime = replace(runtime, clock=clock)
    asked = request_lane(engine, lane, apply=True)

    await fast_engine(waiting_runtime).run_once()
    waiting = operation_of(engine, asked)
    assert (waiting.status, waiting.phase) == ("pending", "queued"), waiting
    assert "shop-testing" not in emulator.summary()["applications"]

    leases.release(engine, lane, holder)
    clock.advance(2.0)  # past the lane's backoff (at most 1 s in the loop's test settings)
    await fast_engine(waiting_runtime).run_once()
    done = operation_of(engine, asked)
    assert done.status == "succeeded" and done.result, done
    assert done.result["outcome"] == "applied"
    assert "shop-testing" in emulator.summary()["applications"]
