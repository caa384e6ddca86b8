"""Compute a plan: preflight, observe, diff, assemble; store it, audit it, record status.

Changes nothing outside (Invariant 1). A kind whose provider fails preflight or
observation blocks its own lanes only; the other kinds' lanes are planned as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from reconciler.core.assembly import KindFacts, build_plan, observation_blockers
from reconciler.core.collector import collector_paused, heap_frozen
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.plans import Blocker, Plan, kind_of_lane
from reconciler.core.recovery import recover_interrupted, unfinished_creates, unfinished_runs
from reconciler.fleet import DesiredFleet, load_fleet
from reconciler.kinds.base import LaneDiff, LaneKind, RemarkingKind
from reconciler.kinds.registry import KindObservation, LaneRegistry
from reconciler.records import audit, ownership, plan_store, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread, session_scope
from reconciler.runtime import Runtime


@dataclass(frozen=True)
class PassContext:
    """The desired fleet, the ownership registry and the kinds built from them, for one pass."""

    fleet: DesiredFleet
    registry: LaneRegistry
    owned: OwnershipSnapshot

    def kind_facts(self) -> dict[str, KindFacts]:
        return {
            kind.name: KindFacts(
                ops=kind.ops,
                guard=kind.guard,
                owned=self.owned.count(kind.name),
                remarks=kind.plan_notes if isinstance(kind, RemarkingKind) else None,
            )
            for kind in self.registry.kinds
        }


def stored_fleet_kinds(runtime: Runtime) -> list[LaneKind]:
    """The kinds built from the stored desired fleet and the ownership registry as they are
    now, for a look that plans nothing (a request's check, a listing). Blocking."""
    fleet = load_fleet(runtime.database)
    return runtime.kinds(runtime, fleet, ownership.snapshot(runtime.database))


def _load_context(runtime: Runtime) -> PassContext:
    with heap_frozen():  # what the last pass left (its fleet): no collection walks it again
        return _load_context_unfrozen(runtime)


def _load_context_unfrozen(runtime: Runtime) -> PassContext:
    recover_interrupted(
        runtime.database, runtime.actor, runtime.now()
    )  # a dead worker's plan, before anything
    fleet = load_fleet(runtime.database)
    unfinished = unfinished_creates(runtime.database)
    runs = unfinished_runs(runtime.database)
    owned = replace(
        ownership.snapshot(runtime.database), unfinished=unfinished, unfinished_runs=runs
    )
    registry = LaneRegistry(runtime.kinds(runtime, fleet, owned))
    policies = {lane: registry.policy(lane) for lane in registry.all_lanes()}
    protect = {lane: p.protect for lane, p in policies.items() if p.generation is not None}
    if ownership.sync_protection(runtime.database, protect, runtime.now()):
        # plan from the registry as just updated
        owned = replace(
            ownership.snapshot(runtime.database), unfinished=unfinished, unfinished_runs=runs
        )
        registry = LaneRegistry(runtime.kinds(runtime, fleet, owned))
    return PassContext(fleet, registry, owned)


async def load_context(runtime: Runtime) -> PassContext:
    return await in_thread(_load_context, runtime)


@dataclass(frozen=True)
class Survey:
    """One observation of some lanes and their diffs, from which plans for any subset of
    them are made without reading anything again (a pass observes once, plans per lane)."""

    lanes: list[str]
    observation: KindObservation
    blockers: list[Blocker]  # preflight and observation blockers, for every lane surveyed
    diffs: dict[str, LaneDiff]
    notes: dict[str, list[str]]  # by the lane each starts with ("<lane key>: ...")


async def survey(runtime: Runtime, context: PassContext, lanes: Sequence[str]) -> Survey:
    """Preflight and observe `lanes` once, and diff each."""
    with heap_frozen():  # the fleet and its kinds, loaded: no collection walks them again
        return await _survey(runtime, context, lanes)


async def _survey(runtime: Runtime, context: PassContext, lanes: Sequence[str]) -> Survey:
    registry = context.registry
    runtime.progress(f"observing {len(lanes)} lane(s)")
    failures = await registry.preflight(lanes)  # Invariant 8: a gate, not a retry storm
    observation = await registry.observe(lanes, skip=list(failures))
    seen_facts = observation.seen_facts()
    if seen_facts:  # what people see of owned objects (a runner's GitHub status)
        await in_thread(ownership.record_seen, runtime.database, seen_facts, runtime.now())
    blockers = [
        Blocker(type=failure.blocker_type, lane=None, kind=kind, message=failure.message)
        for kind, failure in sorted(failures.items())
    ]
    for kind, seen in sorted(observation.by_kind.items()):
        blockers.extend(observation_blockers(kind, seen))
    with collector_paused():
        diffs = {d.lane: d for d in _diffs(registry, lanes, observation, blockers)}
    notes: dict[str, list[str]] = {}
    for note in observation.notes():
        notes.setdefault(note.split(": ", 1)[0], []).append(note)
    return Survey(list(lanes), observation, blockers, diffs, notes)


def plan_from(runtime: Runtime, context: PassContext, seen: Survey, lanes: Sequence[str]) -> Plan:
    """The plan for `lanes` (all surveyed), from the survey alone: pure but for the clock."""
    if len(lanes) == len(seen.lanes):
        notes = [note for found in seen.notes.values() for note in found]
    else:
        notes = [note for lane in lanes for note in seen.notes.get(lane, [])]
    with collector_paused():
        return _plan_from(runtime, context, seen, lanes, notes)


def _plan_from(
    runtime: Runtime, context: PassContext, seen: Survey, lanes: Sequence[str], notes: list[str]
) -> Plan:
    registry = context.registry
    return build_plan(
        diffs=[seen.diffs[lane] for lane in lanes],
        kinds=context.kind_facts(),
        fingerprints=seen.observation.fingerprints(lanes),
        generations={lane: registry.generation(lane) for lane in lanes},
        desired_revision=context.fleet.revision,
        created_by=runtime.actor,
        now=runtime.now(),
        ttl=timedelta(minutes=runtime.settings.plan_ttl_minutes),
        blockers=[b for b in seen.blockers if any(b.concerns(lane) for lane in lanes)],
        notes=notes,
    )


async def compute_plan(runtime: Runtime, lanes: Sequence[str] | None = None) -> Plan:
    """Plan `lanes` (keys or unambiguous bare names; every lane when None)."""
    context = await load_context(runtime)
    registry = context.registry
    selected = registry.resolve(lanes) if lanes else registry.all_lanes()
    seen = await survey(runtime, context, selected)
    plan = plan_from(runtime, context, seen, selected)
    await in_thread(store_plans, runtime, [plan], registry)
    await in_thread(_remember_good, runtime, context, seen)
    return plan


def _remember_good(runtime: Runtime, context: PassContext, seen: Survey) -> None:
    from reconciler.core.known_good import remember_good  # it builds on this module

    remember_good(runtime, context, seen)


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


def store_plans(runtime: Runtime, plans: Sequence[Plan], registry: LaneRegistry) -> None:
    """Save plans, audit each, and set their lanes' status (one transaction for status)."""
    with collector_paused():
        _store_plans(runtime, plans, registry)


def _store_plans(runtime: Runtime, plans: Sequence[Plan], registry: LaneRegistry) -> None:
    for plan in plans:
        plan_store.save(runtime.database, plan)
        if not _repeats_quiet_plan(runtime, plan):
            _audit_plan(runtime, plan)
    updates = [u for plan in plans for u in planned_status(plan, registry)]
    gone = [lane for plan in plans for lane in plan.lanes if _nothing_left(plan, registry, lane)]
    status.record_all(
        runtime.database,
        updates,
        forget=gone + orphaned_status(runtime, registry),
        now=runtime.now(),
    )


def _nothing_left(plan: Plan, registry: LaneRegistry, lane: str) -> bool:
    """A lane no longer desired, with nothing to do and nothing in the way: nothing of it is
    left to show (its objects are deleted, or were deleted outside Setpoint)."""
    return (
        registry.generation(lane) is None
        and not plan.lane_actions(lane)
        and not plan.blockers_for(lane)
    )


def orphaned_status(runtime: Runtime, registry: LaneRegistry) -> list[str]:
    """Status rows of lanes no kind lists any more (no longer desired, owning nothing; e.g.
    a lane blocked `not_owned` whose product was pruned): they describe nothing. Lanes of
    a kind this deployment did not load keep theirs."""
    return [
        lane
        for lane in status.lanes_with_status(runtime.database)
        if registry.kind_named(kind_of_lane(lane)) is not None and not registry.knows(lane)
    ]


def _repeats_quiet_plan(runtime: Runtime, plan: Plan) -> bool:
    """A plan that changes nothing and blocks nothing, with the digest of the newest plan the
    trail recorded: the same finding again. The trail keeps one record per distinct digest,
    so an operator running `plan` to check does not fill it (the plan is still stored)."""
    if plan.actions or plan.blockers:
        return False
    with session_scope(runtime.database) as session:
        newest = audit.list_records(session, event=AuditEvent.plan_computed, limit=1)
    return bool(newest) and (newest[0].data or {}).get("digest") == plan.digest


def _audit_plan(runtime: Runtime, plan: Plan) -> None:
    now = runtime.now()
    audit.record(
        runtime.database,
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
            "blockers": [b.type for b in plan.blockers],
        },
        at=now,
    )
    for blocker in plan.blockers:
        audit.record(
            runtime.database,
            event=AuditEvent.plan_blocked,
            actor=runtime.actor,
            lane=blocker.lane,
            plan_id=plan.plan_id,
            data={"blocker": blocker.type, "message": blocker.message, "kind": blocker.kind},
            at=now,
        )


def planned_status(plan: Plan, registry: LaneRegistry) -> list[status.StatusUpdate]:
    """What each lane of a freshly computed plan shows: blocked, changes pending, or converged
    (a lane with nothing left to show has no update: `store_plans` forgets its row)."""
    actions_by_lane: dict[str, int] = {}
    for action in plan.actions:
        actions_by_lane[action.lane] = actions_by_lane.get(action.lane, 0) + 1
    updates = []
    for lane in plan.lanes:
        blockers = plan.blockers_for(lane)
        actions = actions_by_lane.get(lane, 0)
        if _nothing_left(plan, registry, lane):
            continue  # its row is forgotten
        if blockers:
            condition = status.stalled(blockers[0].type, blockers[0].message)
        elif actions:
            condition = status.pending(f"{actions} action(s) in plan {plan.plan_id}")
        else:
            condition = status.converged()
        generation = registry.generation(lane) if not blockers and not actions else None
        updates.append(status.StatusUpdate(lane, condition, observed_generation=generation))
    return updates
