"""Scheduled reconcile passes: plan every lane on its own, apply only what lane policy allows.

Each lane gets its own plan, so a blocked lane never holds up the others. A plan is applied
here only when the lane's policy lets a scheduled pass run every action in it; anything
else stays pending for an operator, who sees it in `setpoint status` and the audit trail.
A lane that answered "not yet" is requeued: it is skipped until its retry time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reconciler.core import policy
from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.core.planning import compute_plan, load_context
from reconciler.core.plans import Plan, Trigger
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import status
from reconciler.records.columns import utcnow
from reconciler.records.database import in_thread
from reconciler.runtime import Runtime

LaneOutcome = Literal[
    "converged", "blocked", "awaiting_operator", "applied", "apply_failed", "refused", "waiting"
]


@dataclass(frozen=True)
class LaneResult:
    lane: str
    outcome: LaneOutcome
    plan_id: str
    detail: str


@dataclass
class PassReport:
    lanes: list[LaneResult] = field(default_factory=list)

    def count(self, outcome: LaneOutcome) -> int:
        return sum(1 for r in self.lanes if r.outcome == outcome)


async def reconcile_pass(runtime: Runtime) -> PassReport:
    report = PassReport()
    registry = (await load_context(runtime)).registry
    retry_at = await in_thread(status.retry_times, runtime.engine)
    now = utcnow()
    for lane in registry.all_lanes():
        due = retry_at.get(lane)
        if due is not None and due > now:
            detail = f"not yet: tried again after {due:%H:%M:%S} UTC"
            report.lanes.append(LaneResult(lane, "waiting", "", detail))
            continue
        plan = await compute_plan(runtime, [lane])
        report.lanes.append(await _reconcile_lane(runtime, registry, lane, plan))
    return report


async def _reconcile_lane(
    runtime: Runtime, registry: LaneRegistry, lane: str, plan: Plan
) -> LaneResult:
    if plan.blockers:
        detail = "; ".join(f"{b.type.value}: {b.message}" for b in plan.blockers)
        return LaneResult(lane, "blocked", plan.plan_id, detail)
    if not plan.actions:
        return LaneResult(lane, "converged", plan.plan_id, "no changes")
    refusal = policy.unattended_refusal(registry, plan, Trigger.schedule)
    if refusal is not None:
        detail = (
            f"{len(plan.actions)} action(s) pending: {refusal.message}; "
            f"apply with `setpoint apply {plan.plan_id}`"
        )
        return LaneResult(lane, "awaiting_operator", plan.plan_id, detail)
    result = await apply_plan(runtime, plan.plan_id, trigger=Trigger.schedule)
    outcome, detail = _applied(result)
    return LaneResult(lane, outcome, plan.plan_id, detail)


def _applied(result: ApplyResult) -> tuple[LaneOutcome, str]:
    if result.ok:
        return "applied", f"{len(result.actions)} action(s) applied"
    if result.refusal is not None:
        return "refused", f"{result.refusal.type.value}: {result.refusal.message}"
    waiting = [a for a in result.actions if a.result == "retry"]
    if result.status == "waiting" and waiting:
        return "waiting", f"{waiting[0].action_id}: {waiting[0].message}"
    failed = next(a for a in result.actions if a.result == "failed")
    return "apply_failed", f"{failed.action_id}: {failed.message}"
