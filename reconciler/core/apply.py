"""Apply a stored plan: gate it, check it is still true, execute, audit each step.

Order of business (DESIGN invariants 1, 2, 5, 6, 8, 10): the gate (`policy.py`) must pass;
then lanes are leased (a heartbeat keeps the leases alive while the work runs), the plan
is claimed, credentials preflighted, and everything the plan read is read again. Only then
do side effects start, each preceded by a durable intent record and followed by its result,
committed together with the ownership changes the action reported.

Lanes run in parallel, up to `apply_concurrency` at a time; the actions of one lane keep
their order, and an action that another lane's action depends on (a shared project) runs
once, before them. A failure stops its own lane and every action that depends on it; the
other lanes finish. A "not yet" (`Retry`) stops only its lane the same way, and the lane's
status says when it will be tried again. With `on_lane`, each lane is finished when its own
actions are: its status is written, its lease given back (while other lanes still run) and
the caller told, so no lane of a plan waits for the plan's slowest lane.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import anyio
from sqlmodel import Session

from reconciler.core import policy
from reconciler.core.feedback import announce, finished_news, send_feedback_within, started_news
from reconciler.core.journal import Journal, WriteUnit
from reconciler.core.outcomes import Done, Failed, Outcome, Retry
from reconciler.core.planning import PassContext, load_context
from reconciler.core.plans import (
    Action,
    Blocker,
    BlockerType,
    Plan,
    Trigger,
    kind_of_lane,
    with_refs_resolved,
)
from reconciler.core.recovery import recover_interrupted
from reconciler.errors import ActionAccessDenied, ActionFailed, LaneBusy, LeaseLost
from reconciler.kinds.base import ActionExecutor, LaneKind, admission_of
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import audit, leases, ownership, plan_store, status
from reconciler.records.audit import AuditEntry
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.records.plan_store import PlanStatus
from reconciler.runtime import Runtime
from reconciler.secret_values import redact

log = logging.getLogger("setpoint.apply")

ActionResult = Literal["ok", "failed", "retry", "not_run"]
ApplyStatus = Literal["applied", "failed", "waiting", "refused"]


@dataclass(frozen=True)
class ActionReport:
    action_id: str
    op: str
    lane: str
    result: ActionResult
    message: str
    retry_after: float | None = None
    stalled: bool = False  # a Retry that shows the lane Stalled until it is tried again
    stalled_as: BlockerType | None = None  # the reason it shows; None: HealthCheckFailing


@dataclass
class ApplyResult:
    plan_id: str
    status: ApplyStatus
    refusal: Blocker | None = None
    actions: list[ActionReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "applied"

    def lanes(self) -> dict[str, ActionResult]:
        """Each lane's result: its worst action ("failed" > "retry" > "not_run" > "ok")."""
        order: list[ActionResult] = ["ok", "not_run", "retry", "failed"]
        worst: dict[str, ActionResult] = {}
        for report in self.actions:
            now = worst.get(report.lane, "ok")
            worst[report.lane] = max(now, report.result, key=order.index)
        return worst


LaneDone = Callable[[str, list["ActionReport"]], Awaitable[None]]


async def apply_plan(
    runtime: Runtime,
    plan_id: str,
    *,
    allow_destroy: int = 0,
    trigger: Trigger = Trigger.operator,
    reason: str | None = None,
    on_lane: LaneDone | None = None,
) -> ApplyResult:
    """Apply `plan_id`. A trigger other than an operator runs only what lane policy allows.
    `reason`, the operator's word on why, goes into every audit record of the apply."""
    if reason:
        runtime = dataclasses.replace(
            runtime, attribution={**runtime.attribution, "reason": reason}
        )
    context = await load_context(runtime)  # first: it finds plans whose worker died
    plan, plan_status = await in_thread(plan_store.load, runtime.engine, plan_id)
    refusal = policy.gate(
        context.registry,
        plan,
        plan_status,
        now=runtime.now(),
        allow_destroy=allow_destroy,
        trigger=trigger,
        reason=reason or _reason_of(runtime),
    )
    if refusal is not None:
        # Only a pending plan becomes stale by being refused; an interrupted, failed or
        # applied plan keeps saying what happened to it.
        keep = plan_status is not PlanStatus.pending
        return await _refuse(runtime, plan, refusal, keep_status=keep)
    # Unique per attempt: a second apply of the same plan in this very process must not
    # count as the holder of the first one's leases.
    holder = leases.Holder(
        label=f"{runtime.actor}:{plan.plan_id}:{secrets.token_hex(3)}", plan_id=plan.plan_id
    )
    try:
        async with leases.holding(
            runtime.engine,
            plan.lanes,
            holder,
            ttl_seconds=runtime.settings.lease_ttl_seconds,
            clock=runtime.now,
        ) as held:
            if held.taken_over:  # their plans are interrupted, not left `applying`
                await in_thread(recover_interrupted, runtime.engine, runtime.actor, runtime.now())
            # Leases first, then the claim: a plan in `applying` always has a live lease
            # while its worker lives, which is how recovery tells a dead worker's plan.
            if not await in_thread(plan_store.claim_for_apply, runtime.engine, plan.plan_id):
                return await _refuse(
                    runtime,
                    plan,
                    Blocker(
                        type=BlockerType.stale_plan,
                        lane=None,
                        message="another apply of this plan is already running or has finished",
                    ),
                    keep_status=True,
                )
            result = await _apply_leased(runtime, context, plan, held, on_lane)
    except LaneBusy as busy:
        return await _refuse(
            runtime,
            plan,
            Blocker(
                type=BlockerType.action_not_allowed,
                lane=busy.lane,
                message=f"lane {busy.lane} is being reconciled by {busy.holder}; try again later",
            ),
            keep_status=True,
        )
    if result.status != "refused":  # the outcome's feedback, once the lanes are free again
        await send_feedback_within(runtime, context.registry.kinds, plan.lanes)
    return result


async def _refuse(
    runtime: Runtime, plan: Plan, blocker: Blocker, *, keep_status: bool = False
) -> ApplyResult:
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_refused,
        {"blocker": blocker.type.value, "message": blocker.message, **blocker.details},
        lane=blocker.lane,
    )
    if blocker.type is BlockerType.stale_plan and not keep_status:
        await in_thread(plan_store.set_status, runtime.engine, plan.plan_id, PlanStatus.stale)
    return ApplyResult(plan_id=plan.plan_id, status="refused", refusal=blocker)


async def _recheck(runtime: Runtime, registry: LaneRegistry, plan: Plan) -> Blocker | None:
    """Preflight, then re-read what the plan read (Invariants 6 and 8)."""
    failures = await registry.preflight(plan.lanes)
    if failures:
        await in_thread(plan_store.set_status, runtime.engine, plan.plan_id, PlanStatus.pending)
        refused = any(f.credentials_refused for f in failures.values())
        return Blocker(
            type=BlockerType.credentials_refused if refused else BlockerType.preflight_failed,
            lane=None,
            message="; ".join(failures[k].message for k in sorted(failures)),
        )
    changed = await _changed_since_plan(registry, plan)
    if not changed:
        return None
    return Blocker(
        type=BlockerType.stale_plan,
        lane=None,
        message=(
            f"what the plan read has changed since it was computed: {', '.join(changed)}; "
            "compute a new plan"
        ),
        details={"changed": changed},
    )


async def _apply_leased(
    runtime: Runtime,
    context: PassContext,
    plan: Plan,
    held: leases.HeldLanes,
    on_lane: LaneDone | None = None,
) -> ApplyResult:
    registry = context.registry
    refusal = await _recheck(runtime, registry, plan)
    if refusal is not None:
        keep = refusal.type in (BlockerType.preflight_failed, BlockerType.credentials_refused)
        return await _refuse(runtime, plan, refusal, keep_status=keep)
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_started,
        {"digest": plan.digest, "actions": len(plan.actions), "lanes": plan.lanes},
    )
    await in_thread(_mark_reconciling, runtime, plan)
    kinds = registry.kinds
    await announce(runtime, kinds, started_news(plan))
    run = _Run(
        runtime,
        plan,
        registry.executors(runtime, plan.lanes),
        held,
        Journal(runtime.engine),
        anyio.CapacityLimiter(runtime.settings.apply_concurrency),
        registry=registry,
        on_lane=on_lane,
    )
    await _execute_announcing(run, kinds)
    reports = run.ordered_reports()
    outcome = run.plan_outcome()
    await in_thread(plan_store.set_status, runtime.engine, plan.plan_id, PlanStatus(outcome))
    rest = [r for r in reports if r.lane not in run.lanes_done]
    await in_thread(_record_lane_results, runtime, registry, plan, rest, run.lanes_done)
    await announce(runtime, kinds, finished_news(plan.plan_id, reports))
    await _audit(
        runtime,
        plan,
        AuditEvent.apply_finished,
        {
            "status": outcome,
            **{
                result: [r.action_id for r in reports if r.result == result]
                for result in ("ok", "failed", "retry", "not_run")
            },
        },
    )
    return ApplyResult(plan_id=plan.plan_id, status=outcome, actions=reports)


async def _execute_announcing(run: _Run, kinds: Sequence[LaneKind]) -> None:
    """Run the plan's actions while the "applying" feedback is sent: it never holds them up.
    An error writing the records stops both and is raised as itself."""
    crash: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(send_feedback_within, run.runtime, kinds, run.plan.lanes)
        try:
            await run.execute_all()
        except Exception as exc:
            crash = exc
            group.cancel_scope.cancel()
    if crash is not None:
        raise crash


def _mark_reconciling(runtime: Runtime, plan: Plan) -> None:
    message = f"applying {plan.plan_id}"
    updates = [status.StatusUpdate(lane, status.reconciling(message)) for lane in plan.lanes]
    status.record_all(runtime.engine, updates)


@dataclass
class _Run:
    """One apply's walk through the plan: one task per lane, its actions in order."""

    runtime: Runtime
    plan: Plan
    executors: dict[str, ActionExecutor]
    held: leases.HeldLanes
    journal: Journal
    limit: anyio.CapacityLimiter
    reports: dict[str, ActionReport] = field(default_factory=dict)
    not_done: set[str] = field(default_factory=set)  # action ids that did not complete
    finished: dict[str, anyio.Event] = field(default_factory=dict)
    needed_elsewhere: set[str] = field(default_factory=set)  # ids other lanes wait for
    provided: dict[str, str] = field(default_factory=dict)  # plan ref -> provider id
    crash: BaseException | None = None
    lanes_lost: bool = False  # a lane's lease was found taken over
    registry: LaneRegistry | None = None
    on_lane: LaneDone | None = None  # told of each lane once its actions are done
    lanes_done: set[str] = field(default_factory=set)  # lanes finished (status, lease, told)
    _running: int = 0

    async def execute_all(self) -> None:
        chains: dict[str, list[Action]] = {}
        lane_of = {a.id: a.lane for a in self.plan.actions}
        for action in self.plan.actions:
            chains.setdefault(action.lane, []).append(action)
            self.finished[action.id] = anyio.Event()
            self.needed_elsewhere.update(
                d for d in action.depends_on if lane_of.get(d) != action.lane
            )
        self._running = len(chains)
        async with anyio.create_task_group() as lanes:
            for lane, chain in chains.items():
                lanes.start_soon(self._run_lane_safely, lane, chain)
        if self.crash is not None:
            raise self.crash

    async def _run_lane_safely(self, lane: str, chain: list[Action]) -> None:
        # An error writing the records is not an outcome: stop every lane, then raise it
        # from execute_all as itself (not wrapped in an exception group).
        try:
            await self._run_lane(lane, chain)
        except Exception as exc:
            self._running -= 1
            self.crash = self.crash or exc
            for action in chain:
                self.finished[action.id].set()
            return
        self._running -= 1
        # Counted with no await in between: of lanes ending together, one keeps its lease.
        others_running = self._running > 0
        try:
            await self._lane_done(lane, give_back=others_running)
        except Exception as exc:
            self.crash = self.crash or exc

    async def _lane_done(self, lane: str, *, give_back: bool) -> None:
        """The lane's actions are done: with `on_lane`, its status, its lease (given back
        only while other lanes run: a plan `applying` keeps a live lease) and the caller's
        word."""
        if self.on_lane is None or self.registry is None or self.crash is not None:
            return
        reports = [r for r in self.ordered_reports() if r.lane == lane]
        update = _lane_result(self.registry, self.plan, lane, reports, self.runtime.now())
        engine = self.runtime.engine
        if update is None:
            await in_thread(status.record_all, engine, [], forget=[lane])
        else:
            await in_thread(status.record_all, engine, [update])
        if give_back and self.held.lost is None:
            await in_thread(self.held.give_back, lane)
        self.lanes_done.add(lane)
        await self.on_lane(lane, reports)

    async def _run_lane(self, lane: str, chain: list[Action]) -> None:
        stopped: str | None = None  # why the rest of this lane does not run
        carried: list[WriteUnit] = []  # the last result, to commit with the next intent
        for index, action in enumerate(chain, start=1):
            for dependency in action.depends_on:
                await self.finished[dependency].wait()
            why_not = stopped or self._why_not(action)
            if why_not is not None:
                await self.journal.write(*carried, self._skipped(action, why_not))
                carried = []
                continue
            executor = self.executors[kind_of_lane(lane)]
            admission = admission_of(executor, action)
            if carried and (self.limit.available_tokens < 1 or admission is not None):
                # The next intent may wait for a slot: the last result must not wait with it
                # (a crash meanwhile would redo an action that is done).
                await self.journal.write(*carried)
                carried = []
            async with self.limit, nullcontext() if admission is None else admission:
                self.runtime.progress(f"{lane} [{index}/{len(chain)}] {action.op} {action.target}")
                try:
                    await self.journal.write(*carried, self._intent(action))
                except LeaseLost as lost:  # nothing of this unit was written
                    await self.journal.write(*carried, self._skipped(action, str(lost)))
                    carried, stopped, self.lanes_lost = [], str(lost), True
                    continue
                resolved = with_refs_resolved(action, self.provided)
                outcome = await run_executor(executor, resolved)
            if isinstance(outcome, Done):
                self.provided.update(outcome.provided)
            carried = [self._result(action, outcome)]
            if not isinstance(outcome, Done):
                stopped = f"{action.id} {'failed' if isinstance(outcome, Failed) else 'waits'}"
            if stopped or not self._may_carry(action, chain, index):
                await self.journal.write(*carried)
                carried = []
            self.finished[action.id].set()
        await self.journal.write(*carried)

    def _may_carry(self, action: Action, chain: list[Action], index: int) -> bool:
        """May this result wait to be committed with the lane's next intent? Only when that
        intent comes at once: nobody else waits for it and the next action is ready."""
        if action.id in self.needed_elsewhere or index == len(chain):
            return False
        return all(self.finished[d].is_set() for d in chain[index].depends_on)

    def _why_not(self, action: Action) -> str | None:
        if self.crash is not None:
            return "the apply stopped: its records could not be written"
        if self.held.lost is not None:
            return self.held.lost
        missing = [d for d in action.depends_on if d in self.not_done]
        if missing:
            return f"depends on {', '.join(missing)}, which did not complete"
        return None

    def _skipped(self, action: Action, why: str) -> WriteUnit:
        self.not_done.add(action.id)
        self.finished[action.id].set()
        self.reports[action.id] = ActionReport(
            action.id, action.op, action.lane, "not_run", f"not run: {why}"
        )
        data = {"op": action.op, "target": action.target, "why": why}
        return self._record(AuditEvent.action_skipped, action, data)

    def _intent(self, action: Action) -> WriteUnit:
        data = {
            "op": action.op,
            "effect": action.effect.value,  # recovery looks for unfinished creates
            "target": action.target,
            "risk": action.risk.value,
            "changes": [c.model_dump(mode="json") for c in action.changes],
        }
        entry = self._entry(AuditEvent.action_intent, action, data)

        def write(session: Session) -> list[AuditEntry]:
            leases.confirm(
                session, action.lane, self.held.holder, self.runtime.now()
            )  # or nothing is written
            return [entry]

        return write

    def _result(self, action: Action, outcome: Outcome) -> WriteUnit:
        """Report the outcome now; the unit records it with its ownership changes."""
        report = _report(action, outcome)
        self.reports[action.id] = report
        if not isinstance(outcome, Done):
            self.not_done.add(action.id)
        data: dict[str, Any] = {"op": action.op, "target": action.target}
        if isinstance(outcome, Done):
            data["outputs"] = dict(outcome.outputs)
        if isinstance(outcome, Retry):
            data["retry_after"] = outcome.after
        data.update(result=report.result, message=report.message)
        entry = self._entry(AuditEvent.action_result, action, data)

        def write(session: Session) -> list[AuditEntry]:
            if isinstance(outcome, Done | Retry):
                ownership.apply_changes(
                    session,
                    kind=kind_of_lane(action.lane),
                    lane=action.lane,
                    claims=outcome.claims,
                    facts=outcome.facts,
                    releases=outcome.releases,
                )
            return [entry]

        return write

    def _entry(self, event: AuditEvent, action: Action, data: dict[str, Any]) -> AuditEntry:
        return AuditEntry(
            event=event,
            actor=self.runtime.actor,
            lane=action.lane,
            plan_id=self.plan.plan_id,
            action_id=action.id,
            data={**self.runtime.attribution, **data},
        )

    def _record(self, event: AuditEvent, action: Action, data: dict[str, Any]) -> WriteUnit:
        entry = self._entry(event, action, data)
        return lambda _session: [entry]

    def ordered_reports(self) -> list[ActionReport]:
        return [self.reports[a.id] for a in self.plan.actions if a.id in self.reports]

    def plan_outcome(self) -> Literal["applied", "failed", "waiting"]:
        results = {r.result for r in self.reports.values()}
        lost = self.held.lost is not None or self.lanes_lost
        if "failed" in results or (lost and "not_run" in results):
            return "failed"
        if "retry" in results:
            return "waiting"
        return "applied"


async def run_executor(executor: ActionExecutor, action: Action) -> Outcome:
    """The one place exceptions become outcomes; never raises."""
    try:
        return await executor.execute(action)
    except ActionFailed as exc:
        return Failed(redact(str(exc)), access_denied=isinstance(exc, ActionAccessDenied))
    except Exception as exc:  # an unexpected bug must still leave a trail, then surface
        log.exception("action %s failed unexpectedly", action.id)
        return Failed(redact(f"unexpected {type(exc).__name__}: {exc}"))


def _report(action: Action, outcome: Outcome) -> ActionReport:
    if isinstance(outcome, Done):
        return ActionReport(action.id, action.op, action.lane, "ok", outcome.message)
    if isinstance(outcome, Retry):
        message = f"not yet: {redact(outcome.reason)}; trying again after {outcome.after:g}s"
        return ActionReport(
            action.id,
            action.op,
            action.lane,
            "retry",
            message,
            outcome.after,
            outcome.stalled,
            outcome.stalled_as,
        )
    return ActionReport(action.id, action.op, action.lane, "failed", outcome.message)


async def _changed_since_plan(registry: LaneRegistry, plan: Plan) -> list[str]:
    lanes = [lane for lane in plan.lanes if registry.knows(lane)]
    observation = await registry.observe(lanes)
    problems = [p for o in observation.by_kind.values() for p in o.problems]
    if problems:
        return [f"observation incomplete ({p.reason})" for p in problems]
    fingerprints = observation.fingerprints(lanes)
    return [ref for ref, value in plan.fingerprints.items() if fingerprints.get(ref) != value]


def _record_lane_results(
    runtime: Runtime,
    registry: LaneRegistry,
    plan: Plan,
    reports: Sequence[ActionReport],
    recorded: set[str] | None = None,
) -> None:
    """Every lane's status after the apply (but those `recorded` already), in one
    transaction."""
    by_lane: dict[str, list[ActionReport]] = {}
    for report in reports:
        by_lane.setdefault(report.lane, []).append(report)
    updates, gone = [], []
    for lane in plan.lanes:
        if recorded and lane in recorded:
            continue
        lane_reports = by_lane.get(lane, [])
        update = _lane_result(registry, plan, lane, lane_reports, runtime.now())
        if update is None:
            gone.append(lane)  # no longer desired, and now gone
        else:
            updates.append(update)
    status.record_all(runtime.engine, updates, forget=gone)


def _lane_result(
    registry: LaneRegistry,
    plan: Plan,
    lane: str,
    lane_reports: list[ActionReport],
    now: datetime,
) -> status.StatusUpdate | None:
    by_result: dict[ActionResult, list[ActionReport]] = {}
    for report in lane_reports:
        by_result.setdefault(report.result, []).append(report)
    generation = registry.generation(lane)
    if set(by_result) <= {"ok"} and generation is None:
        return None
    # The plan that last changed the lane: this one if any of its actions here succeeded.
    changed = plan.plan_id if "ok" in by_result else None
    if "failed" in by_result:
        first = by_result["failed"][0]
        condition = status.stalled(
            status.Reason.apply_failed, f"{first.action_id} of {plan.plan_id}: {first.message}"
        )
        return status.StatusUpdate(lane, condition, last_applied_plan=changed)
    if "retry" in by_result:
        first = by_result["retry"][0]
        retry_at = now + timedelta(seconds=first.retry_after or 0.0)
        message = f"{first.action_id}: {first.message} (next try {retry_at:%H:%M:%S} UTC)"
        if first.stalled:
            condition = status.stalled(first.stalled_as or status.Reason.health_failing, message)
            return status.StatusUpdate(
                lane, condition, last_applied_plan=changed, retry_at=retry_at
            )
        return status.StatusUpdate(
            lane, status.waiting(message), last_applied_plan=changed, retry_at=retry_at
        )
    if "not_run" in by_result:
        skipped = len(by_result["not_run"])
        condition = status.stalled(
            status.Reason.apply_incomplete, f"{skipped} action(s) of {plan.plan_id} not run"
        )
        return status.StatusUpdate(lane, condition, last_applied_plan=changed)
    if not lane_reports:  # the plan had nothing for this lane: it did not change it
        return status.StatusUpdate(lane, status.converged(), observed_generation=generation)
    # The lane's last action says how it ended (a deploy: verified by its checks, or not).
    last = lane_reports[-1].message
    return status.StatusUpdate(
        lane,
        status.converged(f"plan {plan.plan_id} applied" + (f": {last}" if last else "")),
        observed_generation=generation,
        last_applied_plan=plan.plan_id,
    )


def _reason_of(runtime: Runtime) -> str | None:
    """The reason an apply was given through its attribution (a workflow's operations)."""
    given = runtime.attribution.get("reason")
    return str(given) if given else None


async def _audit(
    runtime: Runtime,
    plan: Plan,
    event: AuditEvent,
    data: dict[str, Any],
    *,
    action: Action | None = None,
    lane: str | None = None,
) -> None:
    """One audit record about this plan (and action), committed before returning."""
    await in_thread(
        audit.record,
        runtime.engine,
        event=event,
        actor=runtime.actor,
        lane=action.lane if action else lane,
        plan_id=plan.plan_id,
        action_id=action.id if action else None,
        data={**runtime.attribution, **data},
    )
