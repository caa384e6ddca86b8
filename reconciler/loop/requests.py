"""Requested reconciles: a lane with open operations (a CI workflow's, through the API).

The worker that claims such a lane moves its operations to `running`, plans the lane from
the batch's one observation and stores that plan (an operation always gets one, so its
caller can read what was found). The plan is applied only when an operation asked for it
(its caller's grant allowed asking) and the lane's policy lets a workflow run every action
without an operator. Each operation then ends `succeeded`, `failed` or `blocked`, with the
plan id and a result: the outcome, each action's result, and the blocker or refusal text.

No request holds its worker for a long wait (DESIGN invariant 17): its apply runs as a
scheduled one does, so a deploy whose build goes on parks the lane (a `Retry` with a due
time). The operation is parked with it: `running` in phase `waiting`, its result naming what
it waits for and when the lane is looked at again. That look is the lane's next requested
reconcile (the loop's queue brings the lane back at its due time); its plan awaits what was
started, never asks for it again, and the operation ends as it would have had the worker
waited: succeeded, failed with the provider's evidence (a `Retry` that stalls the lane, such
as a deploy that ended in error), or blocked.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from reconciler.core import policy
from reconciler.core.apply import ActionReport, ActionResult, ApplyResult, ApplyStatus
from reconciler.core.outcomes import LaneOutcome
from reconciler.core.planning import PassContext, Survey, plan_from, store_plans
from reconciler.core.plans import Blocker, BlockerType, Plan, Trigger
from reconciler.loop.backoff import FailureClass, classify_blockers, classify_refusal
from reconciler.loop.passes import Applier, LaneResult
from reconciler.loop.verdicts import LaneVerdict
from reconciler.records import operations
from reconciler.records.database import in_thread, session_scope
from reconciler.records.operations import (
    Operation,
    OperationPhase,
    OperationStatus,
    RequestOutcome,
)
from reconciler.runtime import Runtime

log = logging.getLogger("setpoint.operations")
# Refusals that say another apply just changed the lane or what it shares (stale), or is
# still finishing on it (its lease: a scheduled plan's last records after the lane's own
# actions were done, which a request that goes first can overtake): the request is surveyed
# and planned once more rather than answered with a refusal nobody asked for.
_PLAN_AGAIN = (BlockerType.stale_plan, BlockerType.lane_busy)


def on_behalf_of(runtime: Runtime, found: Sequence[Operation]) -> Runtime:
    """The runtime an apply for these operations runs with: audited under whoever asked
    first (not the scheduler), naming every operation it serves and the reasons given."""
    first = found[0]
    attribution: dict[str, object] = {"operations": [op.id for op in found]}
    reasons = [op.reason for op in found if op.reason]
    if reasons:
        attribution["reason"] = reasons[0] if len(reasons) == 1 else reasons
    return dataclasses.replace(
        runtime, actor=first.actor or first.requester, attribution=attribution
    )


def take_operations(runtime: Runtime, lanes: Sequence[str]) -> dict[str, list[Operation]]:
    """The claimed lanes' open operations, moved to running/planning (one transaction)."""
    now = runtime.now()
    taken: dict[str, list[Operation]] = {}
    with session_scope(runtime.database) as session:
        for lane, found in operations.open_for_lanes(session, lanes).items():
            taken[lane] = found
            operations.merge_into_first(session, found)
            operations.advance(
                session,
                [op.id for op in found],
                now,
                status=OperationStatus.running,
                phase=OperationPhase.planning,
            )
    return taken


def end_operations(
    runtime: Runtime,
    found: Sequence[Operation],
    status: OperationStatus,
    *,
    plan_id: str | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    phase: OperationPhase = OperationPhase.done,
) -> None:
    with session_scope(runtime.database) as session:
        operations.advance(
            session,
            [op.id for op in found],
            runtime.now(),
            status=status,
            phase=phase,
            plan_id=plan_id,
            result=result,
            error=error,
        )
    if status.final:
        for op in found:
            _log_ended(op, status, plan_id, error)


def _log_ended(
    op: Operation, status: OperationStatus, plan_id: str | None, error: str | None
) -> None:
    """The operator's line for an operation that ended (who asked, which lane, how)."""
    said = {"error": error} if error else {}
    _log_operation(f"operation {status.value}", op, status.value, plan_id, **said)


def _log_operation(
    message: str, op: Operation, result: str, plan_id: str | None, **more: str
) -> None:
    """One line of the service's log about an operation: who asked, which lane, what came
    of it, under which plan, and `more` (logfmt or JSON lines, as the log is set)."""
    fields = {
        "event": "operation",
        "operation": op.id,
        "lane": op.lane,
        "requester": op.requester,
        "result": result,
        "plan": plan_id or "",
        **more,
    }
    log.info(message, extra={"fields": fields})


async def _end(
    runtime: Runtime,
    found: Sequence[Operation],
    status: OperationStatus,
    plan: Plan,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    phase: OperationPhase = OperationPhase.done,
) -> None:
    """Move the lane's operations on, with the plan made for them."""
    await in_thread(
        end_operations,
        runtime,
        found,
        status,
        plan_id=plan.plan_id,
        result=result,
        error=error,
        phase=phase,
    )


def _blockers_text(blockers: Sequence[Blocker]) -> list[str]:
    return [f"{b.type}: {b.message}" for b in blockers]


_REQUEST_OUTCOME_AFTER = {
    ApplyStatus.applied: RequestOutcome.applied,
    ApplyStatus.failed: RequestOutcome.failed,
    ApplyStatus.waiting: RequestOutcome.waiting,
    ApplyStatus.refused: RequestOutcome.refused,
}


def _applied_result(plan: Plan, applied: ApplyResult) -> dict[str, Any]:
    actions = [
        {"id": r.action_id, "op": r.op, "lane": r.lane, "result": r.result, "message": r.message}
        | ({"evidence": dict(r.evidence)} if r.evidence else {})
        for r in applied.actions
    ]
    outcome = _REQUEST_OUTCOME_AFTER[applied.status]
    result: dict[str, Any] = {"outcome": outcome, "plan_id": plan.plan_id}
    result["actions"] = actions
    if applied.refusal is not None:
        result["refusal"] = f"{applied.refusal.type}: {applied.refusal.message}"
    return result


async def work_requested(
    runtime: Runtime,
    context: PassContext,
    seen: Survey,
    lane: str,
    found: Sequence[Operation],
    applier: Applier,
    *,
    last_try: bool = True,
) -> LaneVerdict | None:
    """The lane's verdict, its operations ended; None (operations still running) when the
    apply found the plan stale or the lane still held by another apply, and this was not
    the last try: plan it again."""
    plan = plan_from(runtime, context, seen, [lane])
    await in_thread(store_plans, runtime, [plan], context.registry)
    base: dict[str, Any] = {"plan_id": plan.plan_id, "actions": len(plan.actions)}
    if plan.blockers:
        texts = _blockers_text(plan.blockers)
        failure = classify_blockers(plan.blockers, context.registry.reasons)
        verdict = LaneResult(lane, LaneOutcome.blocked, plan.plan_id, "; ".join(texts))
        if failure is FailureClass.temporary and _stays_parked(runtime, found):
            # A look at a parked wait that could not see (an outage): the wait goes on,
            # and the lane backs off; a worker waiting on the build would not have looked.
            await _end(runtime, found, OperationStatus.running, plan, phase=OperationPhase.waiting)
            return LaneVerdict(verdict, failure)
        result = base | {"outcome": RequestOutcome.blocked, "blockers": texts}
        await _end(
            runtime,
            found,
            OperationStatus.blocked,
            plan,
            result=result,
            error="; ".join(texts),
        )
        return LaneVerdict(verdict, failure)
    if not plan.actions:
        result = base | {"outcome": RequestOutcome.converged}
        await _end(runtime, found, OperationStatus.succeeded, plan, result=result)
        return LaneVerdict(LaneResult(lane, LaneOutcome.converged, plan.plan_id, "no changes"))
    return await _apply_requested(runtime, context, plan, lane, found, applier, last_try)


async def _apply_requested(
    runtime: Runtime,
    context: PassContext,
    plan: Plan,
    lane: str,
    found: Sequence[Operation],
    applier: Applier,
    last_try: bool,
) -> LaneVerdict | None:
    pending = (
        f"{len(plan.actions)} action(s) pending an operator: "
        f"apply with `setpoint apply {plan.plan_id}`"
    )
    base: dict[str, Any] = {"plan_id": plan.plan_id, "actions": len(plan.actions)}
    if not any(op.apply_requested for op in found):
        result = base | {"outcome": RequestOutcome.planned, "detail": pending}
        await _end(runtime, found, OperationStatus.succeeded, plan, result=result)
        return LaneVerdict(LaneResult(lane, LaneOutcome.awaiting_operator, plan.plan_id, pending))
    refusal = policy.unattended_refusal(context.registry, plan, Trigger.workflow)
    if refusal is not None:
        text = f"{refusal.type}: {refusal.message}"
        result = base | {"outcome": RequestOutcome.refused, "refusal": text, "detail": pending}
        await _end(runtime, found, OperationStatus.blocked, plan, result=result, error=text)
        return LaneVerdict(LaneResult(lane, LaneOutcome.awaiting_operator, plan.plan_id, text))
    await _end(runtime, found, OperationStatus.running, plan, phase=OperationPhase.applying)
    applied = await applier(on_behalf_of(runtime, found), plan.plan_id, Trigger.workflow, None)
    again = applied.refusal is not None and applied.refusal.type in _PLAN_AGAIN
    if again and not last_try:
        return None
    if _lane_still_held(runtime, applied, found):
        return await _wait_for_the_lane(runtime, plan, lane, found, applied)
    return await _finish_applied(runtime, plan, lane, found, applied)


def _lane_still_held(runtime: Runtime, applied: ApplyResult, found: Sequence[Operation]) -> bool:
    """Another apply still holds the lane after the second try, and the request has not yet
    waited its limit: the request waits for the lane, it is not refused for another's work."""
    if applied.refusal is None or applied.refusal.type != BlockerType.lane_busy:
        return False
    waited = runtime.now() - min(op.created_at for op in found)
    return waited.total_seconds() < runtime.settings.request_wait_limit_seconds


async def _wait_for_the_lane(
    runtime: Runtime, plan: Plan, lane: str, found: Sequence[Operation], applied: ApplyResult
) -> LaneVerdict:
    """The operations go back to the queue and the lane backs off as after any temporary
    failure: its next look (a fresh plan) comes once the other apply has had time to end."""
    assert applied.refusal is not None
    text = f"{applied.refusal.type}: {applied.refusal.message}"
    await _end(runtime, found, OperationStatus.pending, plan, phase=OperationPhase.queued)
    for op in found:
        _log_operation("operation waits for its lane", op, "waiting", plan.plan_id, error=text)
    verdict = LaneResult(lane, LaneOutcome.waiting, plan.plan_id, text)
    return LaneVerdict(verdict, FailureClass.temporary)


async def _finish_applied(
    runtime: Runtime, plan: Plan, lane: str, found: Sequence[Operation], applied: ApplyResult
) -> LaneVerdict:
    result = _applied_result(plan, applied)
    problems = [r for r in applied.actions if r.result != "ok"]
    detail = f"{problems[0].action_id}: {problems[0].message}" if problems else ""
    if applied.refusal is not None:
        detail = result["refusal"]
        await _end(runtime, found, OperationStatus.blocked, plan, result=result, error=detail)
        failure = classify_refusal(applied.refusal)
        return LaneVerdict(LaneResult(lane, LaneOutcome.refused, plan.plan_id, detail), failure)
    if applied.status is ApplyStatus.applied:
        done = f"{len(applied.actions)} action(s) applied"
        await _end(runtime, found, OperationStatus.succeeded, plan, result=result)
        return LaneVerdict(LaneResult(lane, LaneOutcome.applied, plan.plan_id, done))
    waits = [r for r in applied.actions if r.result is ActionResult.retry]
    if applied.status is ApplyStatus.waiting and not any(r.stalled for r in waits):
        parked = _parked_result(runtime, found, result, waits)
        if _waited_too_long(runtime, parked):
            return await _give_up(runtime, plan, lane, found, parked)
        await _end(
            runtime,
            found,
            OperationStatus.running,
            plan,
            result=parked,
            phase=OperationPhase.waiting,
        )
        _log_parked(found, parked)
        return LaneVerdict(LaneResult(lane, LaneOutcome.waiting, plan.plan_id, detail))
    if applied.status is ApplyStatus.waiting:  # a failure the lane waits out (DeployFailed)
        result["outcome"] = RequestOutcome.failed
        await _end(runtime, found, OperationStatus.failed, plan, result=result, error=detail)
        return LaneVerdict(LaneResult(lane, LaneOutcome.waiting, plan.plan_id, detail))
    await _end(
        runtime,
        found,
        OperationStatus.failed,
        plan,
        result=result,
        error=detail or "the apply failed",
    )
    return LaneVerdict(
        LaneResult(lane, LaneOutcome.apply_failed, plan.plan_id, detail), FailureClass.temporary
    )


def _parked_result(
    runtime: Runtime,
    found: Sequence[Operation],
    result: dict[str, Any],
    waits: Sequence[ActionReport],
) -> dict[str, Any]:
    """The result of a parked operation: the apply's, what it waits for, when the lane is
    looked at again, and since when it waits (kept from its first park)."""
    now = runtime.now()
    after = min((r.retry_after or 0.0 for r in waits), default=0.0)
    return result | {
        "outcome": RequestOutcome.waiting,
        "waiting_for": [
            {"lane": r.lane, "action": r.action_id, "op": r.op, "message": r.message} for r in waits
        ],
        "due_at": (now + timedelta(seconds=after)).isoformat(),
        "parked_since": _parked_since(found, now).isoformat(),
    }


def _stays_parked(runtime: Runtime, found: Sequence[Operation]) -> bool:
    """The lane's operations were parked on a wait, within the request's wait limit."""
    parked = [op.result for op in found if op.result and operations.was_parked(op)]
    return bool(parked) and not _waited_too_long(runtime, parked[0])


def _waited_too_long(runtime: Runtime, parked: dict[str, Any]) -> bool:
    waited = runtime.now() - datetime.fromisoformat(parked["parked_since"])
    return waited.total_seconds() > runtime.settings.request_wait_limit_seconds


async def _give_up(
    runtime: Runtime, plan: Plan, lane: str, found: Sequence[Operation], parked: dict[str, Any]
) -> LaneVerdict:
    """The request waited its limit: its operation ends, failed; its lane stays parked (the
    wait goes on, and a scheduled pass finishes it, never asking for it again)."""
    limit = runtime.settings.request_wait_limit_seconds
    what = "; ".join(f"{w['op']} {w['action']}: {w['message']}" for w in parked["waiting_for"])
    text = (
        f"gave up after waiting {limit:g} s (request_wait_limit_seconds) for {what}; the "
        "lane goes on waiting and the loop finishes it: request the lane again for its result"
    )
    result = parked | {"outcome": RequestOutcome.gave_up}
    await _end(runtime, found, OperationStatus.failed, plan, result=result, error=text)
    return LaneVerdict(LaneResult(lane, LaneOutcome.waiting, plan.plan_id, text))


def _parked_since(found: Sequence[Operation], now: datetime) -> datetime:
    """When the earliest of these operations was first parked (now, if none was)."""
    since = [
        datetime.fromisoformat(op.result["parked_since"])
        for op in found
        if op.result and op.result.get("parked_since")
    ]
    return min([now, *since])


def _log_parked(found: Sequence[Operation], result: dict[str, Any]) -> None:
    for op in found:
        _log_operation(
            "operation parked", op, "waiting", result["plan_id"], due_at=result["due_at"]
        )
