"""One worker's batch: the lanes it claimed, surveyed once, each handled by its kind's rules.

The batch's lanes share one preflight and one observation per kind (the lower bound of
provider calls a pass needs, paid once per batch instead of once per lane). Lanes with open
operations are requested reconciles (`requests.py`); the others are worked as a scheduled
pass works them (`passes.work_scheduled`). Unattended applies hold the leases of the shared
targets they change (`targets.py`). Every lane ends with a verdict the queue acts on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from reconciler.core.apply import ApplyResult
from reconciler.core.planning import PassContext, Survey, load_context, survey
from reconciler.core.plans import BlockerType, Trigger
from reconciler.loop.backoff import FailureClass, classify_blockers, classify_refusal
from reconciler.loop.contexts import SharedContext
from reconciler.loop.passes import (
    Applier,
    LaneResult,
    PassReport,
    ScheduledWork,
    discover_into,
    due_lanes,
    work_scheduled,
)
from reconciler.loop.requests import end_operations, take_operations, work_requested
from reconciler.loop.targets import apply_guarded
from reconciler.loop.verdicts import LaneVerdict
from reconciler.records import status
from reconciler.records.database import in_thread
from reconciler.records.operations import Operation, OperationStatus
from reconciler.runtime import Runtime


async def work_batch(
    runtime: Runtime,
    lanes: Sequence[str],
    contexts: SharedContext | None = None,
    tally: PassReport | None = None,
    *,
    discover: bool = False,
) -> list[LaneVerdict]:
    """Work `lanes` (claimed by the caller); a verdict for each. The plans stored are
    counted into `tally` (the interval's pass report). `discover`: let the kinds that find
    desired state look first (a webhook named these lanes)."""
    # A fresh context also recovers applies whose worker died; each apply loads its own.
    context = await (contexts.get(runtime) if contexts else load_context(runtime))
    if discover and await discover_into(runtime, context, tally or PassReport()):
        context = await _fresh(runtime, contexts)  # plan from the anchors just written
    registry = context.registry
    requested = await in_thread(take_operations, runtime, lanes)
    verdicts = await _unknown(runtime, context, lanes, requested)
    known = [lane for lane in lanes if registry.knows(lane)]
    report = PassReport()
    # Requests first, as the queue ranks them; the scheduled lanes are surveyed after, so
    # what the requests changed (a shared project) does not make their plan stale.
    asked = [lane for lane in known if lane in requested]
    verdicts.extend(await _work_requests(runtime, context, asked, requested, contexts))
    report.plans_stored += len(asked)  # a request always gets a plan of its own
    scheduled = await due_lanes(runtime, [lane for lane in known if lane not in requested], report)
    if asked and scheduled:
        context = await _fresh(runtime, contexts)
    verdicts.extend(await _work_scheduled_lanes(runtime, context, scheduled, report, contexts))
    if tally is not None:
        tally.plans_stored += report.plans_stored
    return await _with_retry_times(runtime, verdicts)


async def _fresh(runtime: Runtime, contexts: SharedContext | None) -> PassContext:
    return await (contexts.get(runtime) if contexts else load_context(runtime))


async def _work_scheduled_lanes(
    runtime: Runtime,
    context: PassContext,
    scheduled: list[str],
    report: PassReport,
    contexts: SharedContext | None,
) -> list[LaneVerdict]:
    """The scheduled lanes as a pass works them. When their apply found the plan stale
    (another replica just changed a target they share), they are surveyed and planned once
    more at once, rather than backing off for it."""
    waiting = [LaneVerdict(result) for result in report.lanes]  # `due_lanes`' results
    if not scheduled:
        return waiting
    first = PassReport()
    seen = await survey(runtime, context, scheduled)
    work = await work_scheduled(runtime, context, seen, scheduled, first, _applier(context))
    report.plans_stored += first.plans_stored
    refusal = work.applied.refusal if work.applied else None
    if refusal is None or refusal.type is not BlockerType.stale_plan:
        return waiting + _scheduled_verdicts(first, work, seen)
    again = [r.lane for r in first.lanes if r.outcome == "refused"]
    kept = PassReport(lanes=[r for r in first.lanes if r.outcome != "refused"])
    fresh = await _fresh(runtime, contexts)
    second, seen_again = PassReport(), await survey(runtime, fresh, again)
    redone = await work_scheduled(runtime, fresh, seen_again, again, second, _applier(fresh))
    report.plans_stored += second.plans_stored
    return (
        waiting
        + _scheduled_verdicts(kept, work, seen)
        + _scheduled_verdicts(second, redone, seen_again)
    )


def _applier(context: PassContext) -> Applier:
    async def applier(runtime: Runtime, plan_id: str, trigger: Trigger) -> ApplyResult:
        return await apply_guarded(runtime, context.registry, plan_id, trigger)

    return applier


async def _work_requests(
    runtime: Runtime,
    context: PassContext,
    asked: list[str],
    requested: dict[str, list[Operation]],
    contexts: SharedContext | None,
) -> list[LaneVerdict]:
    """Each requested lane from one survey; a lane whose apply found its plan stale (another
    lane's apply just changed what they share) is surveyed and planned once more, so its
    caller gets a result rather than a refusal nobody asked for."""
    if not asked:
        return []
    verdicts = []
    seen = await survey(runtime, context, asked)
    for lane in asked:
        found = requested[lane]
        verdict = await work_requested(
            runtime, context, seen, lane, found, _applier(context), last_try=False
        )
        if verdict is None:
            fresh = await (contexts.get(runtime) if contexts else load_context(runtime))
            again = await survey(runtime, fresh, [lane])
            verdict = await work_requested(runtime, fresh, again, lane, found, _applier(fresh))
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


async def _unknown(
    runtime: Runtime,
    context: PassContext,
    lanes: Sequence[str],
    requested: dict[str, list[Operation]],
) -> list[LaneVerdict]:
    """Lanes no kind lists (a request for a lane since removed): nothing to do, ever."""
    verdicts = []
    for lane in lanes:
        if context.registry.knows(lane):
            continue
        detail = f"no kind lists lane {lane}: it is not in the desired state"
        if lane in requested:
            await in_thread(
                end_operations,
                runtime,
                requested[lane],
                OperationStatus.failed,
                result={"outcome": "unknown_lane"},
                error=detail,
            )
        verdicts.append(
            LaneVerdict(LaneResult(lane, "blocked", "", detail), FailureClass.permanent)
        )
    return verdicts


def _scheduled_verdicts(report: PassReport, work: ScheduledWork, seen: Survey) -> list[LaneVerdict]:
    held = {plan.lanes[0]: plan for plan in work.held}
    verdicts = []
    for result in report.lanes:
        failure: FailureClass | None = None
        if result.outcome == "blocked":
            plan = held.get(result.lane)
            blockers = plan.blockers_for(result.lane) if plan else []
            failure = classify_blockers(
                blockers or [b for b in seen.blockers if b.concerns(result.lane)]
            )
        elif result.outcome == "refused" and work.applied and work.applied.refusal:
            failure = classify_refusal(work.applied.refusal)
        elif result.outcome == "apply_failed":
            failure = FailureClass.temporary
        verdicts.append(LaneVerdict(result, failure))
    return verdicts


async def _with_retry_times(runtime: Runtime, verdicts: list[LaneVerdict]) -> list[LaneVerdict]:
    """A lane waiting on its kind's "not yet" comes back at the time the kind named."""
    if not any(v.result.outcome == "waiting" for v in verdicts):
        return verdicts
    retry_at = await in_thread(status.retry_times, runtime.engine)
    return [
        replace(v, not_before=retry_at.get(v.lane)) if v.result.outcome == "waiting" else v
        for v in verdicts
    ]
