"""A plan pass: preflight, observe, diff, plan; store the plan and audit it. Changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from providers.dokploy.errors import DokployError
from reconciler import audit, plan_store, status
from reconciler.audit import AuditEvent
from reconciler.desired import DesiredFleet, load_fleet
from reconciler.lanes.base import LaneDiff, Observation
from reconciler.lanes.product.kind import ProductLanes
from reconciler.ownership import snapshot
from reconciler.plan import Blocker, BlockerType, Plan
from reconciler.planner import build_plan
from reconciler.runtime import Runtime
from reconciler.secrets import installation_salt
from reconciler.store.columns import utcnow


class UnknownLane(ValueError):
    pass


def product_kind(runtime: Runtime, fleet: DesiredFleet | None = None) -> ProductLanes:
    return ProductLanes(
        fleet=fleet or load_fleet(runtime.engine),
        ownership=snapshot(runtime.engine),
        client=runtime.dokploy,
        salt=installation_salt(runtime.engine),
        environ=runtime.environ,
    )


async def preflight(runtime: Runtime) -> str | None:
    """None when the provider answers an authenticated call, else why not (Invariant 8)."""
    try:
        await runtime.dokploy.preflight()
    except DokployError as exc:
        return f"Dokploy preflight failed: {exc}"
    return None


async def compute_plan(runtime: Runtime, lanes: Sequence[str] | None = None) -> Plan:
    fleet = load_fleet(runtime.engine)
    kind = product_kind(runtime, fleet)
    known = kind.all_lanes()
    selected = list(lanes) if lanes else known
    unknown = sorted(set(selected) - set(known))
    if unknown:
        raise UnknownLane(
            f"unknown lane(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
        )
    runtime.progress(f"observing {len(selected)} lane(s) in Dokploy")
    failure = await preflight(runtime)
    diffs: list[LaneDiff] = []
    if failure is not None:
        observation = Observation()
        extra = [Blocker(type=BlockerType.preflight_failed, lane=None, message=failure)]
    else:
        observation = await kind.observe(selected)
        diffs = [kind.diff(lane, observation) for lane in selected]
        extra = []
    plan = build_plan(
        diffs=diffs,
        observation=observation,
        desired_revision=fleet.revision,
        owned_objects=kind.ownership.count("dokploy"),
        guard=runtime.guard,
        created_by=runtime.actor,
        now=utcnow(),
        ttl=timedelta(minutes=runtime.settings.plan_ttl_minutes),
    )
    if extra:
        plan = plan.model_copy(update={"blockers": [*extra, *plan.blockers]})
    plan_store.save(runtime.engine, plan)
    _audit_plan(runtime, plan)
    _record_status(runtime, plan, kind, selected)
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
    runtime: Runtime, plan: Plan, kind: ProductLanes, selected: Sequence[str]
) -> None:
    for lane in selected:
        blockers = [b for b in plan.blockers if b.lane in (lane, None)]
        actions = plan.lane_actions(lane)
        generation = kind.desired[lane].generation if lane in kind.desired else None
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
            observed_generation=generation if not blockers and not actions else None,
        )
