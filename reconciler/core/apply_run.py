"""The run of one apply's actions, once its gate has passed and its lanes are leased.

One task per lane, bounded by `apply_concurrency`; the actions of one lane keep their order,
and an action that another lane's action depends on (a shared project) runs once, before
them. Each action: admission (its turn, if its executor asks for one), intent (committed
with proof of the lease), execute, result with the ownership changes it reported, written
through the journal (group commit). A failure stops its own lane and every action that
depends on it; the other lanes finish. A "not yet" (`Retry`) stops only its lane the same
way. With `on_lane`, each lane is finished when its own actions are (`lane_results`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import anyio
from sqlmodel import Session

from reconciler.core.journal import Journal, WriteUnit
from reconciler.core.lane_results import lane_result
from reconciler.core.outcomes import ActionResult, Done, Failed, Outcome, Retry
from reconciler.core.plans import Action, Plan, kind_of_lane
from reconciler.errors import ActionAccessDenied, ActionFailed, LeaseLost
from reconciler.kinds.base import ActionExecutor, admission_of
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import leases, ownership, status
from reconciler.records.audit import AuditEntry
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.records.plan_store import PlanStatus
from reconciler.runtime import Runtime
from reconciler.secret_values import redact

log = logging.getLogger("setpoint.apply")


class ApplyStatus(StrEnum):
    """How an apply ended. A refusal leaves the plan's status as the refusal set it; the
    others are what the plan becomes (`PLAN_STATUS_AFTER`)."""

    applied = "applied"
    failed = "failed"
    waiting = "waiting"  # applied as far as it could; a lane said "not yet"
    refused = "refused"


PLAN_STATUS_AFTER: dict[ApplyStatus, PlanStatus] = {
    ApplyStatus.applied: PlanStatus.applied,
    ApplyStatus.failed: PlanStatus.failed,
    ApplyStatus.waiting: PlanStatus.waiting,
}


@dataclass(frozen=True)
class ActionReport:
    action_id: str
    op: str
    lane: str
    result: ActionResult
    message: str
    retry_after: float | None = None
    stalled: bool = False  # a Retry that shows the lane Stalled until it is tried again
    stalled_as: str | None = None  # the reason it shows; None: Degraded
    evidence: Mapping[str, Any] | None = None  # what the provider said of a failure


LaneDone = Callable[[str, list["ActionReport"]], Awaitable[None]]


@dataclass
class ActionRun:
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
        update = lane_result(self.registry, self.plan, lane, reports, self.runtime.now())
        engine, now = self.runtime.database, self.runtime.now()
        if update is None:
            await in_thread(status.record_all, engine, [], forget=[lane], now=now)
        else:
            await in_thread(status.record_all, engine, [update], now=now)
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
                outcome = await run_executor(executor, action.given(self.provided))
            if isinstance(outcome, Done):
                self.provided.update(outcome.provided)
            carried = [self._result(action, outcome)]
            if not isinstance(outcome, Done):
                stopped = f"{action.id} {'failed' if isinstance(outcome, Failed) else 'waits'}"
            if stopped or not self._may_carry(action, chain, index):
                await self.journal.write(*carried)
                carried = []
            self.finished[action.id].set()
        if carried:  # a lane's last result is written above: an empty commit costs a transaction
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
            action.id, action.op, action.lane, ActionResult.not_run, f"not run: {why}"
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
            # or nothing is written
            leases.confirm(session, action.lane, self.held.holder, self.runtime.now())
            return [entry]

        return write

    def _result(self, action: Action, outcome: Outcome) -> WriteUnit:
        """Report the outcome now; the unit records it with its ownership changes."""
        report = report_of(action, outcome)
        self.reports[action.id] = report
        if not isinstance(outcome, Done):
            self.not_done.add(action.id)
        data: dict[str, Any] = {"op": action.op, "target": action.target}
        if isinstance(outcome, Done):
            data["outputs"] = dict(outcome.outputs)
        if isinstance(outcome, Retry):
            data["retry_after"] = outcome.after
            if outcome.evidence:
                data["evidence"] = dict(outcome.evidence)
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
                    now=self.runtime.now(),
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

    def plan_outcome(self) -> ApplyStatus:
        results = {r.result for r in self.reports.values()}
        lost = self.held.lost is not None or self.lanes_lost
        if ActionResult.failed in results or (lost and ActionResult.not_run in results):
            return ApplyStatus.failed
        if ActionResult.retry in results:
            return ApplyStatus.waiting
        return ApplyStatus.applied


async def run_executor(executor: ActionExecutor, action: Action) -> Outcome:
    """The one place exceptions become outcomes; never raises."""
    try:
        return await executor.execute(action)
    except ActionFailed as exc:
        return Failed(redact(str(exc)), access_denied=isinstance(exc, ActionAccessDenied))
    except Exception as exc:  # an unexpected bug must still leave a trail, then surface
        log.exception("action %s failed unexpectedly", action.id)
        return Failed(redact(f"unexpected {type(exc).__name__}: {exc}"))


def report_of(action: Action, outcome: Outcome) -> ActionReport:
    if isinstance(outcome, Done):
        return ActionReport(action.id, action.op, action.lane, ActionResult.ok, outcome.message)
    if isinstance(outcome, Retry):
        message = f"not yet: {redact(outcome.reason)}; trying again after {outcome.after:g}s"
        return ActionReport(
            action.id,
            action.op,
            action.lane,
            ActionResult.retry,
            message,
            outcome.after,
            outcome.stalled,
            outcome.stalled_as,
            outcome.evidence,
        )
    return ActionReport(action.id, action.op, action.lane, ActionResult.failed, outcome.message)
