"""Apply a stored plan: gate it, check it is still true, execute in order, audit each step.

Order of business (DESIGN invariants 1, 2, 5, 6, 8, 10): the gate (`policy.py`) must pass;
then lanes are leased, credentials preflighted, and everything the plan read is read again.
Only then do side effects start, each preceded by a durable intent record and followed by
its result, committed together with the ownership changes the action reported.

Outcomes: a failure stops the apply; a "not yet" (`Retry`) stops only its lane and what
depends on it, and the lane's status says when it will be tried again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from reconciler.core import policy
from reconciler.core.outcomes import Done, Failed, Outcome, Retry
from reconciler.core.planning import PassContext, load_context
from reconciler.core.plans import Action, Blocker, BlockerType, Plan, Trigger, kind_of_lane
from reconciler.errors import ActionFailed, LaneBusy, LeaseLost
from reconciler.kinds.base import ActionExecutor
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import audit, leases, ownership, plan_store, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.columns import utcnow
from reconciler.records.database import in_thread
from reconciler.records.plan_store import PlanStatus
from reconciler.runtime import Runtime
from reconciler.secret_values import redact

log = logging.getLogger("setpoint.apply")
LEASE_SECONDS = 1800.0

ActionResult = Literal["ok", "failed", "retry", "not_run"]


@dataclass(frozen=True)
class ActionReport:
    action_id: str
    op: str
    lane: str
    result: ActionResult
    message: str
    retry_after: float | None = None


@dataclass
class ApplyResult:
    plan_id: str
    status: Literal["applied", "failed", "waiting", "refused"]
    refusal: Blocker | None = None
    actions: list[ActionReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "applied"


async def apply_plan(
    runtime: Runtime,
    plan_id: str,
    *,
    allow_destroy: int = 0,
    trigger: Trigger = Trigger.operator,
) -> ApplyResult:
    """Apply `plan_id`. A trigger other than an operator runs only what lane policy allows."""
    plan, plan_status = await in_thread(plan_store.load, runtime.engine, plan_id)
    context = await load_context(runtime)
    refusal = policy.gate(
        context.registry,
        plan,
        plan_status,
        now=utcnow(),
        allow_destroy=allow_destroy,
        trigger=trigger,
    )
    if refusal is not None:
        return await _refuse(runtime, plan, refusal)
    if not await in_thread(plan_store.claim_for_apply, runtime.engine, plan.plan_id):
        return await _refuse(
            runtime,
            plan,
            Blocker(
                type=BlockerType.stale_plan,
                lane=None,
                message="another apply of this plan is already running or has finished",
            ),
            keep_status=True,
        )
    holder = f"{runtime.actor}:{plan.plan_id}"
    try:
        async with leases.holding(
            runtime.engine, plan.lanes, holder, ttl_seconds=LEASE_SECONDS
        ) as held:
            return await _apply_leased(runtime, context, plan, held)
    except LaneBusy as busy:
        await in_thread(plan_store.set_status, runtime.engine, plan.plan_id, PlanStatus.pending)
        return await _refuse(
            runtime,
            plan,
            Blocker(
                type=BlockerType.action_not_allowed,
                lane=busy.lane,
                message=f"lane {busy.lane} is being reconciled by {busy.holder}; try again later",
            ),
            keep_status=True,
        )


async def _refuse(
    runtime: Runtime, plan: Plan, blocker: Blocker, *, keep_status: bool = False
) -> ApplyResult:
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_refused,
        {"blocker": blocker.type.value, "message": blocker.message, **blocker.details},
        lane=blocker.lane,
    )
    if blocker.type is BlockerType.stale_plan and not keep_status:
        await in_thread(plan_store.set_status, runtime.engine, plan.plan_id, PlanStatus.stale)
    return ApplyResult(plan_id=plan.plan_id, status="refused", refusal=blocker)


async def _recheck(runtime: Runtime, registry: LaneRegistry, plan: Plan) -> Blocker | None:
    """Preflight, then re-read what the plan read (Invariants 6 and 8)."""
    failures = await registry.preflight(plan.lanes)
    if failures:
        await in_thread(plan_store.set_status, runtime.engine, plan.plan_id, PlanStatus.pending)
        return Blocker(
            type=BlockerType.preflight_failed,
            lane=None,
            message="; ".join(failures[k] for k in sorted(failures)),
        )
    changed = await _changed_since_plan(registry, plan)
    if not changed:
        return None
    return Blocker(
        type=BlockerType.stale_plan,
        lane=None,
        message=(
            f"what the plan read has changed since it was computed: {', '.join(changed)}; "
            "compute a new plan"
        ),
        details={"changed": changed},
    )


async def _apply_leased(
    runtime: Runtime, context: PassContext, plan: Plan, held: leases.HeldLanes
) -> ApplyResult:
    registry = context.registry
    refusal = await _recheck(runtime, registry, plan)
    if refusal is not None:
        keep = refusal.type is BlockerType.preflight_failed
        return await _refuse(runtime, plan, refusal, keep_status=keep)
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_started,
        {"digest": plan.digest, "actions": len(plan.actions), "lanes": plan.lanes},
    )
    await in_thread(_mark_reconciling, runtime, plan)
    run = _Run(runtime, plan, registry.executors(runtime, plan.lanes), held)
    await run.execute_all()
    outcome = run.plan_outcome()
    await in_thread(plan_store.set_status, runtime.engine, plan.plan_id, PlanStatus(outcome))
    await in_thread(_record_lane_results, runtime, registry, plan, run.reports)
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_finished,
        {
            "status": outcome,
            **{
                result: [r.action_id for r in run.reports if r.result == result]
                for result in ("ok", "failed", "retry", "not_run")
            },
        },
    )
    return ApplyResult(plan_id=plan.plan_id, status=outcome, actions=run.reports)


def _mark_reconciling(runtime: Runtime, plan: Plan) -> None:
    for lane in plan.lanes:
        status.record(runtime.engine, lane, status.reconciling(f"applying {plan.plan_id}"))


@dataclass
class _Run:
    """One apply's walk through the plan's actions, in order."""

    runtime: Runtime
    plan: Plan
    executors: dict[str, ActionExecutor]
    held: leases.HeldLanes
    reports: list[ActionReport] = field(default_factory=list)
    stopped: str | None = None  # why no further action runs
    held_lanes: dict[str, str] = field(default_factory=dict)  # lane -> why it stopped
    not_done: set[str] = field(default_factory=set)  # action ids that did not complete
    renewed_at: float = field(default_factory=time.monotonic)

    async def execute_all(self) -> None:
        total = len(self.plan.actions)
        for index, action in enumerate(self.plan.actions, start=1):
            why_not = self._why_not(action)
            if why_not is None:
                self.runtime.progress(f"[{index}/{total}] {action.op} {action.target}")
                why_not = await self._renew_if_due()
            if why_not is not None:
                await self._skip(action, why_not)
                continue
            await self._run(action)

    async def _renew_if_due(self) -> str | None:
        """Renew the leases every third of their TTL: a long apply must not outlive them
        unnoticed. Returns why work stops when one was lost."""
        if time.monotonic() - self.renewed_at <= LEASE_SECONDS / 3:
            return None
        self.renewed_at = time.monotonic()
        try:
            await in_thread(self.held.renew)
        except LeaseLost as lost:
            self.stopped = str(lost)
        return self.stopped

    def _why_not(self, action: Action) -> str | None:
        if self.stopped is not None:
            return self.stopped
        if action.lane in self.held_lanes:
            return self.held_lanes[action.lane]
        missing = [d for d in action.depends_on if d in self.not_done]
        if missing:
            return f"depends on {', '.join(missing)}, which did not complete"
        return None

    async def _skip(self, action: Action, why: str) -> None:
        self.not_done.add(action.id)
        self.reports.append(
            ActionReport(action.id, action.op, action.lane, "not_run", f"not run: {why}")
        )
        await _audit(
            self.runtime,
            self.plan,
            AuditEvent.action_skipped,
            {"op": action.op, "target": action.target, "why": why},
            action=action,
        )

    async def _run(self, action: Action) -> None:
        await _audit(
            self.runtime,
            self.plan,
            AuditEvent.action_intent,
            {
                "op": action.op,
                "target": action.target,
                "risk": action.risk.value,
                "changes": [c.model_dump(mode="json") for c in action.changes],
            },
            action=action,
        )
        outcome = await run_executor(self.executors[kind_of_lane(action.lane)], action)
        report = _report(action, outcome)
        self.reports.append(report)
        if not isinstance(outcome, Done):
            self.not_done.add(action.id)
        if isinstance(outcome, Failed):
            self.stopped = f"{action.id} failed"
        elif isinstance(outcome, Retry):
            self.held_lanes[action.lane] = f"{action.id} waits: {outcome.reason}"
        await in_thread(_record_outcome, self.runtime, self.plan, action, outcome, report)

    def plan_outcome(self) -> Literal["applied", "failed", "waiting"]:
        results = {r.result for r in self.reports}
        if "failed" in results or (self.stopped is not None and "not_run" in results):
            return "failed"
        if "retry" in results:
            return "waiting"
        return "applied"


async def run_executor(executor: ActionExecutor, action: Action) -> Outcome:
    """The one place exceptions become outcomes; never raises."""
    try:
        return await executor.execute(action)
    except ActionFailed as exc:
        return Failed(redact(str(exc)))
    except Exception as exc:  # an unexpected bug must still leave a trail, then surface
        log.exception("action %s failed unexpectedly", action.id)
        return Failed(redact(f"unexpected {type(exc).__name__}: {exc}"))


def _report(action: Action, outcome: Outcome) -> ActionReport:
    if isinstance(outcome, Done):
        return ActionReport(action.id, action.op, action.lane, "ok", outcome.message)
    if isinstance(outcome, Retry):
        message = f"not yet: {redact(outcome.reason)}; trying again after {outcome.after:g}s"
        return ActionReport(action.id, action.op, action.lane, "retry", message, outcome.after)
    return ActionReport(action.id, action.op, action.lane, "failed", outcome.message)


def _record_outcome(
    runtime: Runtime, plan: Plan, action: Action, outcome: Outcome, report: ActionReport
) -> None:
    """The action's result and the ownership changes it made, in one transaction."""
    data: dict[str, Any] = {"op": action.op, "target": action.target}
    if isinstance(outcome, Done):
        data["outputs"] = dict(outcome.outputs)
    if isinstance(outcome, Retry):
        data["retry_after"] = outcome.after
    with audit.transaction(runtime.engine) as session:
        if isinstance(outcome, Done):
            ownership.apply_changes(
                session,
                kind=kind_of_lane(action.lane),
                lane=action.lane,
                claims=outcome.claims,
                facts=outcome.facts,
                releases=outcome.releases,
            )
        audit.append(
            session,
            event=AuditEvent.action_result,
            actor=runtime.actor,
            lane=action.lane,
            plan_id=plan.plan_id,
            action_id=action.id,
            data={**data, "result": report.result, "message": report.message},
        )


async def _changed_since_plan(registry: LaneRegistry, plan: Plan) -> list[str]:
    lanes = [lane for lane in plan.lanes if registry.knows(lane)]
    observation = await registry.observe(lanes)
    problems = [p for o in observation.by_kind.values() for p in o.problems]
    if problems:
        return [f"observation incomplete ({p.reason})" for p in problems]
    fingerprints = observation.fingerprints()
    return [ref for ref, value in plan.fingerprints.items() if fingerprints.get(ref) != value]


def _record_lane_results(
    runtime: Runtime, registry: LaneRegistry, plan: Plan, reports: list[ActionReport]
) -> None:
    by_lane: dict[str, list[ActionReport]] = {}
    for report in reports:
        by_lane.setdefault(report.lane, []).append(report)
    for lane in plan.lanes:
        _record_lane_result(runtime, registry, plan, lane, by_lane.get(lane, []))


def _record_lane_result(
    runtime: Runtime,
    registry: LaneRegistry,
    plan: Plan,
    lane: str,
    lane_reports: list[ActionReport],
) -> None:
    failed = [r for r in lane_reports if r.result == "failed"]
    waiting = [r for r in lane_reports if r.result == "retry"]
    skipped = [r for r in lane_reports if r.result == "not_run"]
    generation = registry.generation(lane)
    if not (failed or waiting or skipped) and generation is None:
        status.forget(runtime.engine, lane)  # no longer desired, and now gone
        return
    retry_at = None
    if failed:
        condition = status.stalled(
            status.Reason.apply_failed, f"{failed[0].action_id}: {failed[0].message}"
        )
    elif waiting:
        after = waiting[0].retry_after or 0.0
        retry_at = utcnow() + timedelta(seconds=after)
        condition = status.waiting(
            f"{waiting[0].action_id}: {waiting[0].message} (next try {retry_at:%H:%M:%S} UTC)"
        )
    elif skipped:
        condition = status.stalled(
            status.Reason.apply_incomplete, f"{len(skipped)} action(s) not run"
        )
    else:
        condition = status.converged(f"plan {plan.plan_id} applied")
    complete = not (failed or waiting or skipped)
    status.record(
        runtime.engine,
        lane,
        condition,
        observed_generation=generation if complete else None,
        last_applied_plan=plan.plan_id if complete else None,
        retry_at=retry_at,
    )


async def _audit(
    runtime: Runtime,
    plan: Plan,
    event: AuditEvent,
    data: dict[str, Any],
    *,
    action: Action | None = None,
    lane: str | None = None,
) -> None:
    """One audit record about this plan (and action), committed before returning."""
    await in_thread(
        audit.record,
        runtime.engine,
        event=event,
        actor=runtime.actor,
        lane=action.lane if action else lane,
        plan_id=plan.plan_id,
        action_id=action.id if action else None,
        data=data,
    )
