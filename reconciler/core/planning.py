"""Compute a plan: preflight, observe, diff, assemble; store it, audit it, record status.

Changes nothing outside (Invariant 1). A kind whose provider fails preflight or
observation blocks its own lanes only; the other kinds' lanes are planned as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from reconciler.core.assembly import KindFacts, build_plan, observation_blockers
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.plans import Blocker, BlockerType, Plan, kind_of_lane
from reconciler.fleet import DesiredFleet, load_fleet
from reconciler.kinds.base import LaneDiff
from reconciler.kinds.registry import KindObservation, LaneRegistry
from reconciler.records import audit, ownership, plan_store, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.columns import utcnow
from reconciler.records.database import in_thread
from reconciler.runtime import Runtime


@dataclass(frozen=True)
class PassContext:
    """The desired fleet, the ownership registry and the kinds built from them, for one pass."""

    fleet: DesiredFleet
    registry: LaneRegistry
    owned: OwnershipSnapshot

    def kind_facts(self) -> dict[str, KindFacts]:
        return {
            kind.name: KindFacts(ops=kind.ops, guard=kind.guard, owned=self.owned.count(kind.name))
            for kind in self.registry.kinds
        }


def _load_context(runtime: Runtime) -> PassContext:
    fleet = load_fleet(runtime.engine)
    owned = ownership.snapshot(runtime.engine)
    registry = LaneRegistry(runtime.kinds(runtime, fleet, owned))
    policies = {lane: registry.policy(lane) for lane in registry.all_lanes()}
    protect = {lane: p.protect for lane, p in policies.items() if p.generation is not None}
    if ownership.sync_protection(runtime.engine, protect):
        owned = ownership.snapshot(runtime.engine)  # plan from the registry as just updated
        registry = LaneRegistry(runtime.kinds(runtime, fleet, owned))
    return PassContext(fleet, registry, owned)


async def load_context(runtime: Runtime) -> PassContext:
    return await in_thread(_load_context, runtime)


async def compute_plan(runtime: Runtime, lanes: Sequence[str] | None = None) -> Plan:
    """Plan `lanes` (keys or unambiguous bare names; every lane when None)."""
    context = await load_context(runtime)
    registry = context.registry
    selected = registry.resolve(lanes) if lanes else registry.all_lanes()
    runtime.progress(f"observing {len(selected)} lane(s)")
    failures = await registry.preflight(selected)  # Invariant 8: a gate, not a retry storm
    observation = await registry.observe(selected, skip=list(failures))
    blockers = [
        Blocker(type=BlockerType.preflight_failed, lane=None, kind=kind, message=failure)
        for kind, failure in sorted(failures.items())
    ]
    for kind, seen in sorted(observation.by_kind.items()):
        blockers.extend(observation_blockers(kind, seen))
    plan = build_plan(
        diffs=_diffs(registry, selected, observation, blockers),
        kinds=context.kind_facts(),
        fingerprints=observation.fingerprints(),
        generations={lane: registry.generation(lane) for lane in selected},
        desired_revision=context.fleet.revision,
        created_by=runtime.actor,
        now=utcnow(),
        ttl=timedelta(minutes=runtime.settings.plan_ttl_minutes),
        blockers=blockers,
        notes=observation.notes(),
    )
    await in_thread(_store, runtime, plan, registry)
    return plan


def _diffs(
    registry: LaneRegistry,
    selected: Sequence[str],
    observation: KindObservation,
    blockers: list[Blocker],
) -> list[LaneDiff]:
    """A kind that could not be read is not diffed at all: it would read as "nothing exists"."""
    unread = {b.kind for b in blockers if b.lane is None}
    return [
        LaneDiff(lane=lane) if kind_of_lane(lane) in unread else registry.diff(lane, observation)
        for lane in selected
    ]


def _store(runtime: Runtime, plan: Plan, registry: LaneRegistry) -> None:
    plan_store.save(runtime.engine, plan)
    _audit_plan(runtime, plan)
    _record_status(runtime, plan, registry)


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
                {"id": a.id, "op": a.op, "lane": a.lane, "risk": a.risk.value} for a in plan.actions
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
            data={"blocker": blocker.type.value, "message": blocker.message, "kind": blocker.kind},
        )


def _record_status(runtime: Runtime, plan: Plan, registry: LaneRegistry) -> None:
    actions_by_lane: dict[str, int] = {}
    for action in plan.actions:
        actions_by_lane[action.lane] = actions_by_lane.get(action.lane, 0) + 1
    for lane in plan.lanes:
        blockers = plan.blockers_for(lane)
        actions = actions_by_lane.get(lane, 0)
        if blockers:
            condition = status.stalled(blockers[0].type, blockers[0].message)
        elif actions:
            condition = status.pending(f"{actions} action(s) in plan {plan.plan_id}")
        else:
            condition = status.converged()
        status.record(
            runtime.engine,
            lane,
            condition,
            observed_generation=registry.generation(lane) if not blockers and not actions else None,
        )
