"""Scheduled reconcile passes: observe every lane once, act only where there is work.

One preflight and one observation per kind serve every lane of the pass. A lane with
nothing to do costs no stored plan and no audit record (the pass writes one record saying
what it looked at), and its status row is written only if its condition changed. The lanes
a scheduled pass may change on its own go into one plan, applied in parallel (a failing
lane stops only itself). Each lane that needs an operator, or is blocked, gets a plan of
its own, so it never holds up the others; that plan is stored again only when it differs
from the one already waiting. A lane that answered "not yet" is skipped until its retry
time. Finished plans older than the retention setting are pruned; audit records never are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from desired_state.document import Document
from reconciler.core import audit_anchor, policy
from reconciler.core.apply import ActionReport, ApplyResult, LaneDone, apply_plan
from reconciler.core.feedback import announce, send_feedback
from reconciler.core.health_watch import degraded_message, known_failing, watch_health
from reconciler.core.known_good import RolledBack, remember_good, rollbacks_due
from reconciler.core.notifications import (
    LaneNewsItem,
    chain_broken_event,
    notify,
    notify_pass,
)
from reconciler.core.outcomes import ActionResult, LaneOutcome, lane_outcome
from reconciler.core.planning import (
    PassContext,
    Survey,
    load_context,
    orphaned_status,
    plan_from,
    planned_status,
    store_plans,
    survey,
)
from reconciler.core.plans import Plan, Trigger
from reconciler.kinds.base import DiscoveringKind, LaneNews
from reconciler.records import audit, feedback_deliveries, notifications, plan_store, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread, session_scope
from reconciler.records.desired import DocumentChange, store_found
from reconciler.records.lane_health import LaneHealth
from reconciler.runtime import Runtime


@dataclass(frozen=True)
class LaneResult:
    lane: str
    outcome: LaneOutcome
    plan_id: str
    detail: str


@dataclass
class PassReport:
    lanes: list[LaneResult] = field(default_factory=list)
    plans_stored: int = 0
    plans_pruned: int = 0
    found: list[str] = field(default_factory=list)  # desired objects discovery wrote
    discovery_problems: list[str] = field(default_factory=list)
    announce_problems: list[str] = field(default_factory=list)  # feedback that did not land
    notify_problems: list[str] = field(default_factory=list)  # notifications that did not land

    def count(self, outcome: LaneOutcome) -> int:
        return sum(1 for r in self.lanes if r.outcome == outcome)


@dataclass
class _Sorted:
    """The pass's lanes by what happens to them next."""

    quiet: list[str] = field(default_factory=list)
    unattended: list[str] = field(default_factory=list)
    held: list[Plan] = field(default_factory=list)  # blocked, or awaiting an operator
    failing: dict[str, LaneHealth] = field(default_factory=dict)  # quiet, but health fails


def _quiet_result(lane: str, failing: dict[str, LaneHealth]) -> LaneResult:
    row = failing.get(lane)
    if row is None:
        return LaneResult(lane, LaneOutcome.converged, "", "no changes")
    return LaneResult(lane, LaneOutcome.degraded, "", degraded_message(row))


async def reconcile_pass(runtime: Runtime) -> PassReport:
    """One whole scheduled pass in this process (`setpoint run --once` works the same lanes
    through the loop engine, `reconciler.loop.engine`)."""
    report = PassReport()
    context = await start_pass(runtime, report)
    due = await due_lanes(runtime, context.registry.all_lanes(), report)
    seen = await survey(runtime, context, due)
    await work_scheduled(runtime, context, seen, due, report)
    await finish_pass(runtime, context, report)
    return report


async def start_pass(
    runtime: Runtime,
    report: PassReport,
    load: Callable[[Runtime], Awaitable[PassContext]] = load_context,
) -> PassContext:
    """The pass's context (from `load`: the loop's is shared with its batches), after
    discovery stored what it found."""
    context = await load(runtime)
    if await discover_into(runtime, context, report):
        context = await load(runtime)  # plan from the anchors just written
    await in_thread(_forget_orphaned_status, runtime, context)
    return context


def _forget_orphaned_status(runtime: Runtime, context: PassContext) -> None:
    """Status rows of lanes no kind lists any more go once per pass, here: finding them reads
    every status row, and the loop's batches (each surveys a few lanes, none of them such a
    lane) would otherwise each read them all again."""
    orphaned = orphaned_status(runtime, context.registry)
    status.record_all(runtime.database, [], forget=orphaned, now=runtime.now())


# Applies a stored plan for a pass: (runtime, plan id, trigger, told of each lane done).
Applier = Callable[[Runtime, str, Trigger, LaneDone | None], Awaitable[ApplyResult]]


async def apply_unguarded(
    runtime: Runtime, plan_id: str, trigger: Trigger, on_lane: LaneDone | None = None
) -> ApplyResult:
    """One process alone: the planner's shared-op ordering is all the guarding needed."""
    return await apply_plan(runtime, plan_id, trigger=trigger, on_lane=on_lane)


@dataclass
class ScheduledWork:
    """What became of surveyed lanes under the scheduled pass's rules."""

    seen: Survey  # what the lanes were planned from (surveyed again after a rollback)
    held: list[Plan] = field(default_factory=list)  # blocked, or awaiting an operator
    applied: ApplyResult | None = None  # the unattended lanes' apply, when there were any
    rolled: dict[str, RolledBack] = field(default_factory=dict)  # rollbacks this pass wrote


Settled = Callable[[list[LaneResult], ScheduledWork], Awaitable[None]]


async def work_scheduled(
    runtime: Runtime,
    context: PassContext,
    seen: Survey,
    lanes: list[str],
    report: PassReport,
    applier: Applier = apply_unguarded,
    settled: Settled | None = None,
    load: Callable[[Runtime], Awaitable[PassContext]] = load_context,
) -> ScheduledWork:
    """`lanes` (all in `seen`) as a scheduled pass treats them: quiet lanes leave no plan,
    unattended lanes are applied in one plan, held lanes store a plan only when it is new.
    `settled` is told the results as they are known: those known before the apply starts
    (the report's so far), then each applied lane as soon as its own actions are done.

    A lane rolled back on its failed health check (`onFailedHealth: rollback`) is planned in
    this same pass: the context is loaded again (`load`) and the lanes surveyed again, so
    the plan asks for the generation just written; an unattended lane's rollback is applied
    now, a manual one's plan waits for an operator like any other. The new survey does not
    look for rollbacks again: a pass writes at most one per lane, and never walks further
    back (`core/known_good.rollbacks_due`)."""
    rolled = await in_thread(rollbacks_due, runtime, context, seen, lanes)
    if rolled:
        context = await load(runtime)
        lanes = [lane for lane in lanes if context.registry.knows(lane)]
        seen = await survey(runtime, context, lanes)
    work = ScheduledWork(seen=seen, rolled={r.lane: r for r in rolled})

    def told(result: LaneResult) -> LaneResult:
        return _with_rollback(result, work.rolled.get(result.lane))

    sorted_lanes = _sort(runtime, context, seen, lanes)
    await in_thread(remember_good, runtime, context, seen, sorted_lanes.quiet)
    sorted_lanes.failing = await in_thread(
        known_failing, runtime, context.registry, sorted_lanes.quiet
    )
    held, new = await in_thread(_record_pass, runtime, context, sorted_lanes)
    work.held = held
    report.plans_stored += len(new)
    report.lanes.extend(
        told(_quiet_result(lane, sorted_lanes.failing)) for lane in sorted_lanes.quiet
    )
    report.lanes.extend(told(_held_result(plan)) for plan in held)
    await _announce_held(runtime, context, [_held_result(plan) for plan in new])
    if settled is not None:  # every lane but the unattended ones is done with
        await settled(list(report.lanes), work)
    if sorted_lanes.unattended:
        plan = plan_from(runtime, context, seen, sorted_lanes.unattended)
        await in_thread(store_plans, runtime, [plan], context.registry)
        report.plans_stored += 1
        on_lane: LaneDone | None = None
        if settled is not None:
            tell = settled

            async def on_lane(lane: str, reports: list[ActionReport]) -> None:
                await tell([told(lane_applied(plan.plan_id, lane, reports))], work)

        work.applied = await applier(runtime, plan.plan_id, Trigger.schedule, on_lane)
        report.lanes.extend(told(r) for r in _applied(work.applied, sorted_lanes.unattended))
    return work


async def finish_pass(runtime: Runtime, context: PassContext, report: PassReport) -> None:
    """Send the feedback still due, prune old plans, notify the operator's sinks of what
    went wrong, write the pass's one record, and sign a checkpoint of the audit head
    (`core/audit_anchor.py`); a chain that does not verify is notified too."""
    report.announce_problems.extend(await send_feedback(runtime, context.registry.kinds))
    report.plans_pruned = await in_thread(_prune, runtime)
    await _watch(runtime, context, report)
    news = [
        LaneNewsItem(r.lane, r.outcome, r.plan_id, context.registry.notices_of(r.lane))
        for r in report.lanes
    ]
    report.notify_problems.extend(
        await notify_pass(runtime, [n for n in news if n.outcome is not LaneOutcome.converged])
    )
    await in_thread(_audit_pass, runtime, report)
    anchored = await in_thread(
        audit_anchor.anchor, runtime.database, runtime.settings, runtime.now()
    )
    if anchored is not None and anchored.problem and "does not verify" in anchored.problem:
        report.notify_problems.extend(await notify(runtime, [chain_broken_event(anchored.problem)]))
    report.lanes.sort(key=lambda r: r.lane)


async def _watch(runtime: Runtime, context: PassContext, report: PassReport) -> None:
    """Health that keeps watching: the pass's converged lanes whose check is due are checked
    now that every lane's work is done; a lane that turned is reported as it now is."""
    settled = [
        r.lane for r in report.lanes if r.outcome in (LaneOutcome.converged, LaneOutcome.degraded)
    ]
    watched = await watch_health(runtime, context.registry, settled)
    turned = {t.lane for t in watched.turned}
    report.lanes[:] = [
        _quiet_result(r.lane, watched.failing) if r.lane in turned else r for r in report.lanes
    ]


async def discover_into(runtime: Runtime, context: PassContext, report: PassReport) -> bool:
    """Let kinds that find desired state (preview anchors) look; store what changed.
    Returns whether anything was stored."""
    documents = []
    for kind in context.registry.kinds:
        if isinstance(kind, DiscoveringKind):
            found = await kind.discover()
            documents.extend(found.documents)
            report.discovery_problems.extend(f"{kind.name}: {p}" for p in found.problems)
    if not documents:
        return False
    report.found = await in_thread(_store_found, runtime, documents)
    return bool(report.found)


def _store_found(runtime: Runtime, documents: list[Document]) -> list[str]:
    now = runtime.now()
    with audit.transaction(runtime.database) as session:
        stored = store_found(session, documents, source="discovery", now=now)
        changed = [
            key for key, change, _ in stored.entries if change is not DocumentChange.unchanged
        ]
        if changed:
            audit.append(
                session,
                event=AuditEvent.desired_applied,
                actor=runtime.actor,
                data={"source": "discovery", "objects": changed},
                at=now,
            )
    return changed


async def _announce_held(runtime: Runtime, context: PassContext, news: list[LaneResult]) -> None:
    """A plan newly held for an operator (or blocked) is news the moment it is stored. It is
    recorded here and sent by the loop's sender (or at the pass's end): the lanes applied
    next in this batch never wait for GitHub."""
    told = [LaneNews(r.lane, r.outcome, r.plan_id, r.detail) for r in news]
    await announce(runtime, context.registry.kinds, told)


async def due_lanes(runtime: Runtime, lanes: list[str], report: PassReport) -> list[str]:
    """`lanes` but those waiting for their retry time (reported as waiting)."""
    retry_at = await in_thread(status.retry_times, runtime.database)
    now = runtime.now()
    due = []
    for lane in lanes:
        until = retry_at.get(lane)
        if until is not None and until > now:
            detail = f"not yet: tried again after {until:%H:%M:%S} UTC"
            report.lanes.append(LaneResult(lane, LaneOutcome.waiting, "", detail))
        else:
            due.append(lane)
    return due


def _sort(runtime: Runtime, context: PassContext, seen: Survey, wanted: list[str]) -> _Sorted:
    lanes = _Sorted()
    for lane in wanted:
        diff = seen.diffs[lane]
        blocked = any(b.concerns(lane) for b in seen.blockers) or diff.blockers
        if not diff.actions and not blocked:
            lanes.quiet.append(lane)
            continue
        plan = plan_from(runtime, context, seen, [lane])
        if plan.blockers or policy.unattended_refusal(context.registry, plan, Trigger.schedule):
            lanes.held.append(plan)
        else:
            lanes.unattended.append(lane)
    return lanes


def _record_pass(
    runtime: Runtime, context: PassContext, lanes: _Sorted
) -> tuple[list[Plan], list[Plan]]:
    """Store the held lanes' plans that are new, and write every status in one transaction.
    Returns the held lanes' plans as stored (a plan that says what the waiting one says is
    that one) and those that were stored now."""
    registry = context.registry
    waiting = plan_store.pending_by_lanes(
        runtime.database, created_by=runtime.actor, now=runtime.now()
    )
    held, new = [], []
    for plan in lanes.held:
        stored_id, digest = waiting.get(tuple(sorted(plan.lanes)), ("", ""))
        if digest == plan.digest:
            held.append(plan.model_copy(update={"plan_id": stored_id}))
        else:
            held.append(plan)
            new.append(plan)
    for plan in new:
        store_plans(runtime, [plan], registry)  # with its lanes' status
    desired_quiet = [lane for lane in lanes.quiet if registry.generation(lane) is not None]
    updates = [
        status.StatusUpdate(
            lane,
            status.degraded(degraded_message(lanes.failing[lane]))
            if lane in lanes.failing
            else status.converged(),
            observed_generation=registry.generation(lane),
        )
        for lane in desired_quiet
    ]
    for plan in held:
        if plan not in new:
            updates.extend(planned_status(plan, registry))
    # A quiet lane no longer desired has nothing left to show.
    gone = [lane for lane in lanes.quiet if lane not in desired_quiet]
    # (Status rows of lanes no kind lists went at the pass's start: `start_pass`.)
    status.record_all(runtime.database, updates, forget=gone, now=runtime.now())
    return held, new


def _with_rollback(result: LaneResult, rolled: RolledBack | None) -> LaneResult:
    """A lane this pass rolled back, as its plan turned out: `rolled_back` once the previous
    state was applied; otherwise what stopped it (awaiting an operator, failed, waiting),
    saying that it is a rollback."""
    if rolled is None:
        return result
    said = (
        f"health check failed: desired generation {rolled.generation} brings back what ran at "
        f"generation {rolled.restored.generation} ({rolled.restored.running})"
    )
    outcome = LaneOutcome.rolled_back if result.outcome is LaneOutcome.applied else result.outcome
    return LaneResult(result.lane, outcome, result.plan_id, f"{said}; {result.detail}")


def _held_result(plan: Plan) -> LaneResult:
    lane = plan.lanes[0]
    if plan.blockers:
        detail = "; ".join(f"{b.type}: {b.message}" for b in plan.blockers)
        return LaneResult(lane, LaneOutcome.blocked, plan.plan_id, detail)
    detail = (
        f"{len(plan.actions)} action(s) pending an operator: "
        f"apply with `setpoint apply {plan.plan_id}`"
    )
    return LaneResult(lane, LaneOutcome.awaiting_operator, plan.plan_id, detail)


def _applied(result: ApplyResult, lanes: list[str]) -> list[LaneResult]:
    if result.refusal is not None:
        detail = f"{result.refusal.type}: {result.refusal.message}"
        return [LaneResult(lane, LaneOutcome.refused, result.plan_id, detail) for lane in lanes]
    return [lane_applied(result.plan_id, lane, result.actions) for lane in lanes]


def lane_applied(plan_id: str, lane: str, reports: Sequence[ActionReport]) -> LaneResult:
    """One lane's result from its actions' reports (the others' are ignored)."""
    mine = [r for r in reports if r.lane == lane]
    first = next((r for r in mine if r.result is not ActionResult.ok), None)
    done = sum(1 for r in mine if r.result is ActionResult.ok)
    detail = f"{first.action_id}: {first.message}" if first else f"{done} action(s) applied"
    return LaneResult(lane, lane_outcome(r.result for r in mine), plan_id, detail)


def _prune(runtime: Runtime) -> int:
    now = runtime.now()
    cutoff = now - timedelta(days=runtime.settings.plan_retention_days)
    pruned = plan_store.prune(runtime.database, older_than=cutoff)
    with session_scope(runtime.database) as session:  # what was told of them goes with them
        feedback_deliveries.prune_settled(session, older_than=cutoff)
        notifications.prune_settled(session, older_than=cutoff)
    if pruned:
        audit.record(
            runtime.database,
            event=AuditEvent.plans_pruned,
            actor=runtime.actor,
            data={"plans": pruned, "created_before": cutoff.isoformat()},
            at=now,
        )
    return pruned


def _audit_pass(runtime: Runtime, report: PassReport) -> None:
    """One record per pass: what it looked at and what came of it (lanes with no news are
    counted, not listed)."""
    busy = [r for r in report.lanes if r.outcome is not LaneOutcome.converged]
    audit.record(
        runtime.database,
        event=AuditEvent.pass_completed,
        actor=runtime.actor,
        data={
            "lanes": len(report.lanes),
            "converged": report.count(LaneOutcome.converged),
            "plans_stored": report.plans_stored,
            "plans_pruned": report.plans_pruned,
            "lanes_with_news": {r.lane: r.outcome for r in busy},
            "found": report.found,
            "discovery_problems": report.discovery_problems,
            "announce_problems": report.announce_problems,
            "notify_problems": report.notify_problems,
        },
        at=runtime.now(),
    )
