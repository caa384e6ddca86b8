"""One worker's batch: the lanes it claimed, surveyed once, then each lane on its own.

The batch's lanes share one preflight and one observation per kind (the lower bound of
provider calls a pass needs, paid once per batch instead of once per lane). Lanes with open
operations are requested reconciles (`requests.py`), each applied in a task of its own; the
others are worked as a scheduled pass works them (`passes.work_scheduled`), their unattended
lanes in one plan whose apply tells of each lane as soon as that lane's actions are done.
Unattended applies hold the leases of the shared targets they change (`targets.py`).

Every lane ends with a verdict, handed to `finish` the moment it is known (DESIGN invariant
17): a lane's queue row and operations never wait for the batch's slowest lane. `planned` is
set once the batch's one survey is done, so the worker can claim more while lanes apply.

Requests first (`RequestsFirst`): one process's event loop has no priorities, so while a
request is being started (from its batch's start until its apply runs its first action or
it ends) a scheduled batch's survey and apply wait for it, for `REQUESTS_FIRST_SECONDS` at
most. Scheduled lanes are only delayed, never held: lanes already applying go on, and a
stream of requests cannot keep a scheduled step waiting longer than that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import anyio

from reconciler.core import shared_reads
from reconciler.core.apply import ApplyResult, LaneDone
from reconciler.core.outcomes import LaneOutcome
from reconciler.core.planning import PassContext, Survey, load_context, survey
from reconciler.core.plans import BlockerType, Trigger
from reconciler.core.reasons import ReasonBook
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
from reconciler.records.operations import Operation, OperationStatus, RequestOutcome
from reconciler.runtime import Runtime

Finish = Callable[[list[LaneVerdict]], Awaitable[None]]
# The longest a scheduled step (a batch's survey, its apply) waits for requests being started.
REQUESTS_FIRST_SECONDS = 2.0


def _set_event() -> anyio.Event:
    event = anyio.Event()
    event.set()
    return event


@dataclass
class RequestsFirst:
    """The requests being started in one process; scheduled steps give way to them."""

    starting: int = 0
    _none_starting: anyio.Event = field(default_factory=_set_event)

    def begin(self) -> None:
        if not self.starting:
            self._none_starting = anyio.Event()
        self.starting += 1

    def end(self) -> None:
        self.starting -= 1
        if not self.starting:
            self._none_starting.set()

    async def give_way(self) -> None:
        """Wait until no request is being started, `REQUESTS_FIRST_SECONDS` at most."""
        with anyio.move_on_after(REQUESTS_FIRST_SECONDS):
            await self._none_starting.wait()


@dataclass
class _Batch:
    """Where a batch's verdicts go: each to `finish` once, as soon as it is known."""

    runtime: Runtime
    finish: Finish
    contexts: SharedContext | None
    requests_first: RequestsFirst = field(default_factory=RequestsFirst)
    done: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)  # requested lanes no longer starting

    def request_started(self, lane: str) -> None:
        """The requested lane's apply runs its first action, or the lane ended without one."""
        if lane not in self.started:
            self.started.add(lane)
            self.requests_first.end()

    async def hand_over(self, verdicts: list[LaneVerdict]) -> None:
        fresh = [v for v in verdicts if v.lane not in self.done]
        if not fresh:
            return
        self.done.update(v.lane for v in fresh)
        await self.finish(await _with_retry_times(self.runtime, fresh))

    async def fresh(self) -> PassContext:
        contexts = self.contexts
        return await (contexts.get(self.runtime) if contexts else load_context(self.runtime))


async def work_batch(
    runtime: Runtime,
    lanes: Sequence[str],
    finish: Finish,
    contexts: SharedContext | None = None,
    tally: PassReport | None = None,
    *,
    discover: bool = False,
    planned: anyio.Event | None = None,
    requests_first: RequestsFirst | None = None,
) -> None:
    """Work `lanes` (claimed by the caller); each lane's verdict goes to `finish` as soon as
    it is known. The plans stored are counted into `tally` (the interval's pass report).
    `discover`: let the kinds that find desired state look first (a webhook named these
    lanes). `planned` is set once the batch's survey is done. `requests_first`: the
    process's requests being started, which scheduled lanes give way to."""
    batch = _Batch(runtime, finish, contexts, requests_first or RequestsFirst())
    # The operations first, then the context: what a request changed in the desired state
    # was stored before its operation, so the context sees it (built before, it could
    # answer the request "no changes" from the old desired state).
    requested = await in_thread(take_operations, runtime, lanes)
    for _ in requested:
        batch.requests_first.begin()
    try:
        await _work_batch(batch, lanes, requested, tally, discover=discover, planned=planned)
    finally:
        for lane in requested:
            if lane not in batch.started:
                batch.requests_first.end()


async def _work_batch(
    batch: _Batch,
    lanes: Sequence[str],
    requested: dict[str, list[Operation]],
    tally: PassReport | None,
    *,
    discover: bool,
    planned: anyio.Event | None,
) -> None:
    runtime = batch.runtime
    contexts = batch.contexts
    # A fresh context also recovers applies whose worker died; each apply loads its own.
    context = await batch.fresh()
    if discover and await discover_into(runtime, context, tally or PassReport()):
        context = await batch.fresh()  # plan from the anchors just written
    registry = context.registry
    await batch.hand_over(await _unknown(runtime, context, lanes, requested))
    known = [lane for lane in lanes if registry.knows(lane)]
    report = PassReport()
    asked = [lane for lane in known if lane in requested]
    scheduled = await due_lanes(runtime, [lane for lane in known if lane not in requested], report)
    await batch.hand_over([LaneVerdict(result) for result in report.lanes])  # not due yet
    report.lanes.clear()
    if scheduled and not asked:
        await batch.requests_first.give_way()
    with shared_reads.sharing(contexts.reads if contexts else None):  # one per pass
        seen = await survey(runtime, context, asked + scheduled)  # one observation for all
    if planned is not None:
        planned.set()
    async with anyio.create_task_group() as group:
        for lane in asked:  # each request on its own: none waits for another's apply
            group.start_soon(_work_request, batch, context, seen, lane, requested[lane])
        if scheduled:
            group.start_soon(_work_scheduled_lanes, batch, context, seen, scheduled, report)
    report.plans_stored += len(asked)  # a request always gets a plan of its own
    if tally is not None:
        tally.plans_stored += report.plans_stored


async def _work_request(
    batch: _Batch,
    context: PassContext,
    seen: Survey,
    lane: str,
    found: list[Operation],
) -> None:
    """The requested lane from the batch's survey; when its apply found the plan stale
    (another lane's apply just changed what they share) or the lane still held by another
    apply, it is surveyed and planned once more, so its caller gets a result rather than a
    refusal nobody asked for."""
    runtime = batch.runtime
    announced = runtime.progress

    def progress(message: str) -> None:  # the apply's actions report here as they start
        batch.request_started(lane)
        announced(message)

    applying = replace(runtime, progress=progress)
    try:
        verdict = await work_requested(
            applying, context, seen, lane, found, _applier(context), last_try=False
        )
        if verdict is None:
            fresh = await batch.fresh()
            again = await survey(runtime, fresh, [lane])
            verdict = await work_requested(applying, fresh, again, lane, found, _applier(fresh))
    finally:
        batch.request_started(lane)
    if verdict is not None:
        await batch.hand_over([verdict])


async def _work_scheduled_lanes(
    batch: _Batch,
    context: PassContext,
    seen: Survey,
    scheduled: list[str],
    report: PassReport,
) -> None:
    """The scheduled lanes as a pass works them, each handed over when it is done. When their
    apply found the plan stale (another replica or a request just changed a target they
    share), they are surveyed and planned once more at once, rather than backing off."""
    runtime = batch.runtime
    first = PassReport()
    work = await _scheduled(batch, context, seen, scheduled, first)
    report.plans_stored += first.plans_stored
    refusal = work.applied.refusal if work.applied else None
    if refusal is None or refusal.type != BlockerType.stale_plan:
        await batch.hand_over(_scheduled_verdicts(first, work, work.seen, context.registry.reasons))
        return
    again = [r.lane for r in first.lanes if r.outcome is LaneOutcome.refused]
    kept = PassReport(lanes=[r for r in first.lanes if r.outcome is not LaneOutcome.refused])
    await batch.hand_over(_scheduled_verdicts(kept, work, work.seen, context.registry.reasons))
    fresh = await batch.fresh()
    second, seen_again = PassReport(), await survey(runtime, fresh, again)
    redone = await _scheduled(batch, fresh, seen_again, again, second)
    report.plans_stored += second.plans_stored
    await batch.hand_over(_scheduled_verdicts(second, redone, redone.seen, fresh.registry.reasons))


async def _scheduled(
    batch: _Batch, context: PassContext, seen: Survey, lanes: list[str], report: PassReport
) -> ScheduledWork:
    """`work_scheduled`, handing over the lanes it settles before its apply, and each
    applied lane when its own actions are done."""

    async def settled(results: list[LaneResult], work: ScheduledWork) -> None:
        verdicts = _scheduled_verdicts(
            PassReport(lanes=results), work, work.seen, context.registry.reasons
        )
        await batch.hand_over(verdicts)

    async def load(_: Runtime) -> PassContext:
        return await batch.fresh()

    applier = _applier(context, batch.requests_first)
    return await work_scheduled(batch.runtime, context, seen, lanes, report, applier, settled, load)


def _applier(context: PassContext, requests_first: RequestsFirst | None = None) -> Applier:
    async def applier(
        runtime: Runtime, plan_id: str, trigger: Trigger, on_lane: LaneDone | None
    ) -> ApplyResult:
        if requests_first is not None and trigger is Trigger.schedule:
            await requests_first.give_way()
        # The loop comes back to a parked lane: no apply of the loop holds a build
        # (invariant 17). A workflow's request parks with its lane, its operation open
        # until the lane's next look ends the wait (`requests.py`).
        parks = trigger in (Trigger.schedule, Trigger.workflow)
        runtime = replace(runtime, parks_long_waits=parks)
        return await apply_guarded(runtime, context.registry, plan_id, trigger, on_lane)

    return applier


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
                result={"outcome": RequestOutcome.unknown_lane},
                error=detail,
            )
        verdicts.append(
            LaneVerdict(LaneResult(lane, LaneOutcome.blocked, "", detail), FailureClass.permanent)
        )
    return verdicts


def _scheduled_verdicts(
    report: PassReport, work: ScheduledWork, seen: Survey, reasons: ReasonBook
) -> list[LaneVerdict]:
    held = {plan.lanes[0]: plan for plan in work.held}
    verdicts = []
    for result in report.lanes:
        failure: FailureClass | None = None
        if result.outcome is LaneOutcome.blocked:
            plan = held.get(result.lane)
            blockers = plan.blockers_for(result.lane) if plan else []
            failure = classify_blockers(
                blockers or [b for b in seen.blockers if b.concerns(result.lane)], reasons
            )
        elif result.outcome is LaneOutcome.refused and work.applied and work.applied.refusal:
            failure = classify_refusal(work.applied.refusal)
        elif result.outcome is LaneOutcome.apply_failed:
            failure = FailureClass.temporary
        verdicts.append(LaneVerdict(result, failure))
    return verdicts


async def _with_retry_times(runtime: Runtime, verdicts: list[LaneVerdict]) -> list[LaneVerdict]:
    """A lane waiting on its kind's "not yet" comes back at the time the kind named."""
    if not any(v.result.outcome is LaneOutcome.waiting for v in verdicts):
        return verdicts
    retry_at = await in_thread(status.retry_times, runtime.database)
    return [
        replace(v, not_before=retry_at.get(v.lane))
        if v.result.outcome is LaneOutcome.waiting
        else v
        for v in verdicts
    ]
