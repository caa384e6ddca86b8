"""A plan pass: preflight, observe, diff, plan; store the plan and audit it. Changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from reconciler.core.assembly import build_plan
from reconciler.core.plans import Blocker, BlockerType, Plan
from reconciler.fleet import load_fleet
from reconciler.kinds.base import LaneDiff, Observation
from reconciler.kinds.registry import LaneRegistry, lane_kinds
from reconciler.records import audit, plan_store, status
from reconciler.records.audit import AuditEvent
from reconciler.records.columns import utcnow
from reconciler.runtime import Runtime


async def compute_plan(runtime: Runtime, lanes: Sequence[str] | None = None) -> Plan:
    fleet = load_fleet(runtime.engine)
    registry = lane_kinds(runtime, fleet)
    if registry.remember(runtime.engine):
        registry = lane_kinds(runtime, fleet)  # plan from the registry as just updated
    selected = list(lanes) if lanes else registry.all_lanes()
    registry.check(selected)
    runtime.progress(f"observing {len(selected)} lane(s)")
    failures = await registry.preflight(selected)  # Invariant 8: a gate, not a retry storm
    diffs: list[LaneDiff] = []
    observation = Observation()
    if not failures:
        observation = await registry.observe(selected)
        diffs = [registry.diff(lane, observation) for lane in selected]
    plan = build_plan(
        diffs=diffs,
        observation=observation,
        desired_revision=fleet.revision,
        owned_objects=registry.owned_count(),
        guard=runtime.guard,
        created_by=runtime.actor,
        now=utcnow(),
        ttl=timedelta(minutes=runtime.settings.plan_ttl_minutes),
        extra_blockers=[
            Blocker(type=BlockerType.preflight_failed, lane=None, message=failure)
            for failure in failures
        ],
    )
    plan_store.save(runtime.engine, plan)
    _audit_plan(runtime, plan)
    _record_status(runtime, plan, registry, selected)
    return plan


def _audit_plan(runtime: Runtime, plan: Plan) -> None:
    audit.record(
        runtime.engine,
        event=AuditEvent.plan_computed,
        actor=runtime.actor,
        plan_id=plan.plan_id,
        data={
            "digest": plan.digest,
            "lanes": plan.lanes,
            "desired_revision": plan.desired_revision,
            "actions": [
                {"id": a.id, "op": a.op.value, "lane": a.lane, "risk": a.risk.value}
                for a in plan.actions
            ],
            "blockers": [b.type.value for b in plan.blockers],
        },
    )
    for blocker in plan.blockers:
        audit.record(
            runtime.engine,
            event=AuditEvent.plan_blocked,
            actor=runtime.actor,
            lane=blocker.lane,
            plan_id=plan.plan_id,
            data={"blocker": blocker.type.value, "message": blocker.message},
        )


def _record_status(
    runtime: Runtime, plan: Plan, registry: LaneRegistry, selected: Sequence[str]
) -> None:
    for lane in selected:
        blockers = [b for b in plan.blockers if b.lane in (lane, None)]
        actions = plan.lane_actions(lane)
        if blockers:
            condition = status.stalled(blockers[0].type.value, blockers[0].message)
        elif actions:
            condition = status.pending(f"{len(actions)} action(s) in plan {plan.plan_id}")
        else:
            condition = status.converged()
        status.record(
            runtime.engine,
            lane,
            condition,
            observed_generation=registry.generation(lane) if not blockers and not actions else None,
        )
