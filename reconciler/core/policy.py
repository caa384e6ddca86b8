"""May this plan run? The engine's rules first, then each lane's own policy.

Engine-wide: the plan must be pending and unexpired, carry no blocker (a blast-radius
block lifts only with --allow-destroy N), and each of its lanes must still be at the
desired generation it was planned from (an edit elsewhere does not matter, Invariant 13).
Then, for any trigger but an operator naming the plan, every action must be allowed by its
lane's policy: the kind decides what runs unattended.
"""

from __future__ import annotations

from datetime import datetime

from reconciler.core.plans import Blocker, BlockerType, Plan, Trigger
from reconciler.kinds.registry import LaneRegistry
from reconciler.records.plan_store import PlanStatus


def gate(
    registry: LaneRegistry,
    plan: Plan,
    plan_status: PlanStatus,
    *,
    now: datetime,
    allow_destroy: int,
    trigger: Trigger,
    reason: str | None = None,
) -> Blocker | None:
    return (
        _usable(plan, plan_status, now)
        or _unblocked(plan, allow_destroy)
        or _current(registry, plan)
        or unattended_refusal(registry, plan, trigger)
        or _reasoned(registry, plan, trigger, reason)
    )


def _reasoned(
    registry: LaneRegistry, plan: Plan, trigger: Trigger, reason: str | None
) -> Blocker | None:
    """A lane whose policy requires a reason is applied by a person or a workflow only with
    one; a scheduled pass runs only what the policy lets it run alone."""
    if reason or trigger is Trigger.schedule:
        return None
    wanting = [
        lane
        for lane in plan.lanes
        if registry.knows(lane) and registry.policy(lane).requires_reason
    ]
    if not wanting:
        return None
    return Blocker(
        type=BlockerType.reason_required,
        lane=wanting[0] if len(wanting) == 1 else None,
        message=f"{', '.join(wanting)} require(s) a reason: apply with --reason TEXT",
        details={"lanes": wanting},
    )


def _usable(plan: Plan, plan_status: PlanStatus, now: datetime) -> Blocker | None:
    if plan_status is not PlanStatus.pending:
        return Blocker(
            type=BlockerType.stale_plan,
            lane=None,
            message=f"plan {plan.plan_id} is {plan_status.value}; compute a new plan",
        )
    if now >= plan.expires_at:
        return Blocker(
            type=BlockerType.stale_plan,
            lane=None,
            message=f"plan {plan.plan_id} expired at {plan.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        )
    return None


def _unblocked(plan: Plan, allow_destroy: int) -> Blocker | None:
    for blocker in plan.blockers:
        if blocker.type == BlockerType.blast_radius_exceeded and allow_destroy >= plan.deletions:
            continue
        return blocker
    return None


def _current(registry: LaneRegistry, plan: Plan) -> Blocker | None:
    changed = [
        lane
        for lane, generation in sorted(plan.generations.items())
        if registry.generation(lane) != generation
    ]
    if not changed:
        return None
    return Blocker(
        type=BlockerType.stale_plan,
        lane=changed[0] if len(changed) == 1 else None,
        message=(
            f"desired state changed since the plan for {', '.join(changed)}; compute a new plan"
        ),
        details={"lanes": changed},
    )


def unattended_refusal(registry: LaneRegistry, plan: Plan, trigger: Trigger) -> Blocker | None:
    """The first action `trigger` may not run without an operator, as a blocker; None when
    lane policy allows them all."""
    if trigger is Trigger.operator:
        return None  # an operator named this plan: that is the opt-in (Invariant 1)
    for action in plan.actions:
        if not registry.knows(action.lane):
            refusal: str | None = f"lane {action.lane} is not known; an operator must apply"
        else:
            refusal = registry.policy(action.lane).allows(action, trigger)
        if refusal is not None:
            return Blocker(
                type=BlockerType.action_not_allowed,
                lane=action.lane,
                message=f"{action.id} {action.op} on {action.lane}: {refusal}",
                details={"trigger": trigger.value},
            )
    return None
