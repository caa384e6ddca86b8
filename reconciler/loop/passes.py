"""Scheduled reconcile passes: plan every lane on its own, apply only what lane policy allows.

Each lane gets its own plan, so a blocked lane never holds up the others. A plan is applied
here only when its lane says `apply: auto-safe` and every action in it is safe; anything
else stays pending for an operator, who sees it in `setpoint status` and the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan, Risk
from reconciler.kinds.registry import lane_kinds
from reconciler.runtime import Runtime

LaneOutcome = Literal[
    "converged", "blocked", "awaiting_operator", "applied", "apply_failed", "refused"
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


def auto_appliable(plan: Plan, apply_policy: str | None) -> bool:
    return (
        apply_policy == "auto-safe"
        and bool(plan.actions)
        and not plan.blockers
        and all(a.risk is Risk.safe for a in plan.actions)
    )


async def reconcile_pass(runtime: Runtime) -> PassReport:
    report = PassReport()
    registry = lane_kinds(runtime)
    for lane in registry.all_lanes():
        plan = await compute_plan(runtime, [lane])
        policy = registry.apply_policy(lane)
        if plan.blockers:
            detail = "; ".join(f"{b.type.value}: {b.message}" for b in plan.blockers)
            report.lanes.append(LaneResult(lane, "blocked", plan.plan_id, detail))
        elif not plan.actions:
            report.lanes.append(LaneResult(lane, "converged", plan.plan_id, "no changes"))
        elif not auto_appliable(plan, policy):
            why = "lane policy is manual" if policy != "auto-safe" else "plan has non-safe actions"
            detail = f"{len(plan.actions)} action(s) pending: {why}; apply with `setpoint apply {plan.plan_id}`"
            report.lanes.append(LaneResult(lane, "awaiting_operator", plan.plan_id, detail))
        else:
            result = await apply_plan(runtime, plan.plan_id, auto_safe=True)
            if result.ok:
                outcome: LaneOutcome = "applied"
                detail = f"{len(result.actions)} action(s) applied"
            elif result.refusal is not None:
                outcome, detail = (
                    "refused",
                    f"{result.refusal.type.value}: {result.refusal.message}",
                )
            else:
                failed = next(a for a in result.actions if a.result == "failed")
                outcome, detail = "apply_failed", f"{failed.action_id}: {failed.message}"
            report.lanes.append(LaneResult(lane, outcome, plan.plan_id, detail))
    return report
