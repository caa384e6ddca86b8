"""Apply a stored plan: gate it, check it is still true, execute, audit each step.

This module is the entry and the gate; the run of the actions is `apply_run.py`, and what
the apply writes to its lanes' status is `lane_results.py`.

Order of business (DESIGN invariants 1, 2, 5, 6, 8, 10): the gate (`policy.py`) must pass;
then lanes are leased (a heartbeat keeps the leases alive while the work runs), the plan
is claimed, credentials preflighted, and everything the plan read is read again. Only then
do side effects start, each preceded by a durable intent record and followed by its result,
committed together with the ownership changes the action reported.

Lanes run in parallel, up to `apply_concurrency` at a time; the actions of one lane keep
their order, and an action that another lane's action depends on (a shared project) runs
once, before them. A failure stops its own lane and every action that depends on it; the
other lanes finish. A "not yet" (`Retry`) stops only its lane the same way, and the lane's
status says when it will be tried again. With `on_lane`, each lane is finished when its own
actions are: its status is written, its lease given back (while other lanes still run) and
the caller told, so no lane of a plan waits for the plan's slowest lane.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from reconciler.core import policy
from reconciler.core.apply_run import (
    PLAN_STATUS_AFTER,
    ActionReport,
    ActionRun,
    ApplyStatus,
    LaneDone,
)
from reconciler.core.feedback import announce, finished_news, send_feedback_within, started_news
from reconciler.core.journal import Journal
from reconciler.core.lane_results import mark_reconciling, record_lane_results
from reconciler.core.notifications import LaneNewsItem, notify_apply
from reconciler.core.outcomes import ActionResult, LaneOutcome, lane_outcome, worst_result
from reconciler.core.planning import PassContext, load_context
from reconciler.core.plans import Action, Blocker, BlockerType, Plan, Trigger
from reconciler.core.recovery import recover_interrupted
from reconciler.errors import LaneBusy
from reconciler.kinds.base import LaneKind
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import audit, leases, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.records.plan_store import PlanStatus
from reconciler.runtime import Runtime

# What callers import from here: the apply's result and the reports it carries.
__all__ = [
    "ActionReport",
    "ActionResult",
    "ApplyResult",
    "ApplyStatus",
    "LaneDone",
    "apply_plan",
]


@dataclass
class ApplyResult:
    plan_id: str
    status: ApplyStatus
    refusal: Blocker | None = None
    actions: list[ActionReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is ApplyStatus.applied

    def lanes(self) -> dict[str, ActionResult]:
        """Each lane's result: its worst action's."""
        by_lane: dict[str, list[ActionResult]] = {}
        for report in self.actions:
            by_lane.setdefault(report.lane, []).append(report.result)
        return {lane: worst_result(results) for lane, results in by_lane.items()}


async def apply_plan(
    runtime: Runtime,
    plan_id: str,
    *,
    allow_destroy: int = 0,
    trigger: Trigger = Trigger.operator,
    reason: str | None = None,
    on_lane: LaneDone | None = None,
) -> ApplyResult:
    """Apply `plan_id`. A trigger other than an operator runs only what lane policy allows.
    `reason`, the operator's word on why, goes into every audit record of the apply.

    An operator's or a workflow's apply tells the operator's sinks what went wrong (an
    apply failed, a plan blocked by a guard) when it ends, whoever called it (the CLI, the
    review pages, the API, the loop's requests); a scheduled pass tells of its applies with
    the rest of its lanes, grouped, when the pass ends (`loop/passes.finish_pass`)."""
    plan, result, registry = await _apply_plan(
        runtime,
        plan_id,
        allow_destroy=allow_destroy,
        trigger=trigger,
        reason=reason,
        on_lane=on_lane,
    )
    if trigger is not Trigger.schedule:
        await notify_apply(runtime, _news(registry, plan, result))
    return result


def _news(registry: LaneRegistry, plan: Plan, result: ApplyResult) -> list[LaneNewsItem]:
    """Each lane of the plan as the apply left it, for the notifications."""
    outcomes = result.lanes()

    def outcome(lane: str) -> LaneOutcome:
        if result.refusal is not None:
            return LaneOutcome.refused
        return lane_outcome([outcomes.get(lane, ActionResult.ok)])

    return [
        LaneNewsItem(lane, outcome(lane), plan.plan_id, registry.notices_of(lane))
        for lane in plan.lanes
    ]


async def _apply_plan(
    runtime: Runtime,
    plan_id: str,
    *,
    allow_destroy: int,
    trigger: Trigger,
    reason: str | None,
    on_lane: LaneDone | None,
) -> tuple[Plan, ApplyResult, LaneRegistry]:
    """The plan, what its apply did, and the kinds it was applied with."""
    if reason:
        runtime = dataclasses.replace(
            runtime, attribution={**runtime.attribution, "reason": reason}
        )
    context = await load_context(runtime)  # first: it finds plans whose worker died
    plan, result = await _apply_in(
        runtime,
        context,
        plan_id,
        allow_destroy=allow_destroy,
        trigger=trigger,
        reason=reason,
        on_lane=on_lane,
    )
    return plan, result, context.registry


async def _apply_in(
    runtime: Runtime,
    context: PassContext,
    plan_id: str,
    *,
    allow_destroy: int,
    trigger: Trigger,
    reason: str | None,
    on_lane: LaneDone | None,
) -> tuple[Plan, ApplyResult]:
    plan, plan_status = await in_thread(plan_store.load, runtime.database, plan_id)
    refusal = policy.gate(
        context.registry,
        plan,
        plan_status,
        now=runtime.now(),
        allow_destroy=allow_destroy,
        trigger=trigger,
        reason=reason or _reason_of(runtime),
    )
    if refusal is not None:
        # Only a pending plan becomes stale by being refused; an interrupted, failed or
        # applied plan keeps saying what happened to it.
        keep = plan_status is not PlanStatus.pending
        return plan, await _refuse(runtime, plan, refusal, keep_status=keep)
    # Unique per attempt: a second apply of the same plan in this very process must not
    # count as the holder of the first one's leases.
    holder = leases.Holder(
        label=f"{runtime.actor}:{plan.plan_id}:{secrets.token_hex(3)}", plan_id=plan.plan_id
    )
    try:
        async with leases.holding(
            runtime.database,
            plan.lanes,
            holder,
            ttl_seconds=runtime.settings.lease_ttl_seconds,
            clock=runtime.now,
        ) as held:
            if held.taken_over:  # their plans are interrupted, not left `applying`
                await in_thread(recover_interrupted, runtime.database, runtime.actor, runtime.now())
            # Leases first, then the claim: a plan in `applying` always has a live lease
            # while its worker lives, which is how recovery tells a dead worker's plan.
            if not await in_thread(plan_store.claim_for_apply, runtime.database, plan.plan_id):
                return plan, await _refuse(
                    runtime,
                    plan,
                    Blocker(
                        type=BlockerType.stale_plan,
                        lane=None,
                        message="another apply of this plan is already running or has finished",
                    ),
                    keep_status=True,
                )
            result = await _apply_leased(runtime, context, plan, held, on_lane)
    except LaneBusy as busy:
        return plan, await _refuse(
            runtime,
            plan,
            Blocker(
                type=BlockerType.lane_busy,
                lane=busy.lane,
                message=f"lane {busy.lane} is being reconciled by {busy.holder}; try again later",
            ),
            keep_status=True,
        )
    # The outcome's feedback, once the lanes are free again.
    if result.status is not ApplyStatus.refused:
        await send_feedback_within(runtime, context.registry.kinds, plan.lanes)
    return plan, result


async def _refuse(
    runtime: Runtime, plan: Plan, blocker: Blocker, *, keep_status: bool = False
) -> ApplyResult:
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_refused,
        {"blocker": blocker.type, "message": blocker.message, **blocker.details},
        lane=blocker.lane,
    )
    if blocker.type == BlockerType.stale_plan and not keep_status:
        await in_thread(plan_store.set_status, runtime.database, plan.plan_id, PlanStatus.stale)
    return ApplyResult(plan_id=plan.plan_id, status=ApplyStatus.refused, refusal=blocker)


async def _recheck(runtime: Runtime, registry: LaneRegistry, plan: Plan) -> Blocker | None:
    """Preflight, then re-read what the plan read (Invariants 6 and 8)."""
    failures = await registry.preflight(plan.lanes)
    if failures:
        await in_thread(plan_store.set_status, runtime.database, plan.plan_id, PlanStatus.pending)
        refused = any(f.credentials_refused for f in failures.values())
        return Blocker(
            type=BlockerType.credentials_refused if refused else BlockerType.preflight_failed,
            lane=None,
            message="; ".join(failures[k].message for k in sorted(failures)),
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
    runtime: Runtime,
    context: PassContext,
    plan: Plan,
    held: leases.HeldLanes,
    on_lane: LaneDone | None = None,
) -> ApplyResult:
    registry = context.registry
    refusal = await _recheck(runtime, registry, plan)
    if refusal is not None:
        keep = refusal.type in (BlockerType.preflight_failed, BlockerType.credentials_refused)
        return await _refuse(runtime, plan, refusal, keep_status=keep)
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_started,
        {"digest": plan.digest, "actions": len(plan.actions), "lanes": plan.lanes},
    )
    await in_thread(mark_reconciling, runtime, plan)
    kinds = registry.kinds
    await announce(runtime, kinds, started_news(plan))
    run = ActionRun(
        runtime,
        plan,
        registry.executors(runtime, plan.lanes),
        held,
        Journal(runtime.database, runtime.now),
        anyio.CapacityLimiter(runtime.settings.apply_concurrency),
        registry=registry,
        on_lane=on_lane,
    )
    await _execute_announcing(run, kinds)
    reports = run.ordered_reports()
    outcome = run.plan_outcome()
    await in_thread(
        plan_store.set_status, runtime.database, plan.plan_id, PLAN_STATUS_AFTER[outcome]
    )
    rest = [r for r in reports if r.lane not in run.lanes_done]
    await in_thread(record_lane_results, runtime, registry, plan, rest, run.lanes_done)
    await announce(runtime, kinds, finished_news(plan.plan_id, reports))
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_finished,
        {
            "status": outcome.value,
            **{
                result.value: [r.action_id for r in reports if r.result is result]
                for result in ActionResult
            },
        },
    )
    return ApplyResult(plan_id=plan.plan_id, status=outcome, actions=reports)


async def _execute_announcing(run: ActionRun, kinds: Sequence[LaneKind]) -> None:
    """Run the plan's actions while the "applying" feedback is sent: it never holds them up.
    An error writing the records stops both and is raised as itself."""
    crash: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(send_feedback_within, run.runtime, kinds, run.plan.lanes)
        try:
            await run.execute_all()
        except Exception as exc:
            crash = exc
            group.cancel_scope.cancel()
    if crash is not None:
        raise crash


async def _changed_since_plan(registry: LaneRegistry, plan: Plan) -> list[str]:
    lanes = [lane for lane in plan.lanes if registry.knows(lane)]
    observation = await registry.observe(lanes)
    problems = [p for o in observation.by_kind.values() for p in o.problems]
    if problems:
        return [f"observation incomplete ({p.reason})" for p in problems]
    fingerprints = observation.fingerprints(lanes)
    return [ref for ref, value in plan.fingerprints.items() if fingerprints.get(ref) != value]


def _reason_of(runtime: Runtime) -> str | None:
    """The reason an apply was given through its attribution (a workflow's operations)."""
    given = runtime.attribution.get("reason")
    return str(given) if given else None


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
        runtime.database,
        event=event,
        actor=runtime.actor,
        lane=action.lane if action else lane,
        plan_id=plan.plan_id,
        action_id=action.id if action else None,
        data={**runtime.attribution, **data},
        at=runtime.now(),
    )
