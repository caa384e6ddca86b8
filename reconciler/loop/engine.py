"""The loop engine: workers that claim lanes from the work queue, on anyio (kopf's reactor).

    timer ──every interval──> discovery, then every lane queued (WorkPriority.scheduled)
    API / webhooks ─────────> lanes queued at workflow / webhook priority (records/work_queue)
    workers (loop_workers) ─> claim a batch, survey it once, start it, claim again
    request worker ─────────> claims requests alone, at once when this process queues one
    batches ────────────────> each lane worked on its own (worker.py), finished when it ends
    claim keeper ───────────> renews the claims of the lanes in flight
    feedback sender ────────> sends the feedback applies left undelivered, when it is due

No lane waits for another (DESIGN invariant 17): a worker is free again once its batch is
surveyed, and each lane's queue row and operations are finished the moment its verdict is
known. Lanes in flight are bounded by workers x batch size; requests (workflow, webhook)
may take one batch more, so a busy loop still starts them within a poll. One more worker
claims requests only: it never waits for the other workers' surveys, and a request queued in
this process (the API's, a webhook's) wakes it at once instead of at its next poll. A
request is claimed without scheduled lanes beside it, so it is surveyed on its own, and a
workflow's request gets a provider client's next free connection before scheduled lanes'
calls (`providers/urgency.py`).

One worker per lane at a time: a lane's queue row is claimed by one worker, whose claim is
renewed while it works; a lane's objects change only under its lane lease (`apply_plan`)
and shared targets only under theirs (`targets.py`), so a claim that lapses (a stalled or
dead replica) can never let two workers mutate one thing. On SQLite one process may run the
loop: it holds a lease under a key no lane can have, and a second one says so and stops.

Shutdown (`request_stop`, SIGTERM in `run_until_signalled`): workers claim nothing more;
lanes in flight may finish within the grace period, and then are cancelled: their
plans are recorded as interrupted, their operations go back to pending (or fail, if they
were applying), and their claims are given back.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
from sqlalchemy.exc import SQLAlchemyError

from providers.urgency import urgent
from reconciler.core.feedback import send_feedback
from reconciler.core.notifications import send_notifications_due
from reconciler.core.outcomes import LaneOutcome
from reconciler.core.planning import PassContext
from reconciler.errors import LaneBusy, LoopAlreadyRunning
from reconciler.loop import passes
from reconciler.loop.backoff import FailureClass
from reconciler.loop.buckets import TokenBucket, install_rate_limits
from reconciler.loop.contexts import SharedContext
from reconciler.loop.passes import LaneResult, PassReport
from reconciler.loop.resume import Resumed, resume
from reconciler.loop.verdicts import LaneVerdict, finish
from reconciler.loop.worker import RequestsFirst, work_batch
from reconciler.records import feedback_deliveries, leases, work_queue
from reconciler.records.database import in_thread, session_scope
from reconciler.records.work_queue import ClaimedWork, WorkPriority
from reconciler.runtime import Runtime
from reconciler.secret_values import redact

log = logging.getLogger("setpoint.loop")
T = TypeVar("T")

SQLITE_LOOP_KEY = "loop:sqlite"  # a lease key no lane can have ("loop" is no kind)
# Whoever holds this schedules the passes: with replicas, one timer queues every lane per
# interval, not one per replica.
TIMER_KEY = "loop:timer"


@dataclass(frozen=True)
class WorkInterval:
    """When one worker held one lane (monotonic seconds), for tests and metrics."""

    lane: str
    worker: str
    started: float
    ended: float
    outcome: str


@dataclass
class LoopEngine:
    """One process's loop: `run_once`, `run`, `run_until_signalled` or `run_beside`. Build
    it inside the event loop that runs it (its events belong to that loop); each replica
    builds its own, with its own holder identity."""

    runtime: Runtime
    name: str = ""
    draw: Callable[[float, float], float] = random.uniform
    on_result: Callable[[LaneResult], None] | None = None  # per-lane progress
    on_pass: Callable[[PassReport], None] | None = None  # each interval's report
    work_log: list[WorkInterval] = field(default_factory=list)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    resumed: Resumed | None = None
    contexts: SharedContext = field(default_factory=SharedContext)
    requests_first: RequestsFirst = field(default_factory=RequestsFirst)
    _stop: anyio.Event = field(default_factory=anyio.Event)
    _request_heard: anyio.Event = field(default_factory=anyio.Event)  # a request was queued
    _in_flight: dict[str, ClaimedWork] = field(default_factory=dict)
    _scopes: set[anyio.CancelScope] = field(default_factory=set)
    _batches: anyio.abc.TaskGroup | None = None  # where the workers' batches run
    # In a --once run: lanes already worked whose queue rows stay (a retry time, a request
    # that came meanwhile), not to be claimed again in this run. A lane whose row went needs
    # no excluding, so a quiet pass's claims carry no growing list of lanes.
    _worked_still_queued: set[str] = field(default_factory=set)
    _report: PassReport = field(default_factory=PassReport)
    exclusive_held: bool = False  # this engine holds the SQLite database's one loop

    def __post_init__(self) -> None:
        label = self.name or f"{self.runtime.actor}@{leases.this_host()}:{os.getpid()}"
        self.holder = leases.Holder(label=f"loop:{label}:{secrets.token_hex(3)}")
        self.worker = self.holder.label
        settings = self.runtime.settings
        self.buckets = install_rate_limits(
            self.runtime.providers, settings.provider_rate_limits, settings.provider_rate_burst
        )

    # -- entry points ---------------------------------------------------------------------

    async def run_once(self) -> PassReport:
        """One scheduled pass through the queue (`setpoint run --once`): every lane queued,
        then worked until none of them is due; other queued lanes (requests) too."""
        async with self._single_process():
            self.resumed = await in_thread(resume, self.runtime)
            context = await self._tick()
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_claims)
                await self._run_workers(once=True)
                group.cancel_scope.cancel()
            report, self._report = self._report, PassReport()
            await passes.finish_pass(self.runtime, context, report)
            return report

    async def run(self, interval: float) -> None:
        """Work until `request_stop`: a scheduled pass every `interval` seconds."""
        async with self._single_process():
            self.resumed = await in_thread(resume, self.runtime)
            stop_listening = self._listen_for_requests()
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(self._keep_claims)
                    group.start_soon(self._timer, interval)
                    group.start_soon(self._enforce_grace)
                    group.start_soon(self._send_feedback)
                    await self._run_workers(once=False)
                    group.cancel_scope.cancel()
            finally:
                stop_listening()

    async def run_beside(self, interval: float) -> None:
        """`run` as a companion of the API (`setpoint serve`): being cancelled means "stop
        cleanly", so the loop is shielded from the cancellation and stopped the usual way:
        in-flight work gets the grace period, then is recorded as interrupted."""
        ended = anyio.Event()

        async def shielded() -> None:
            with anyio.CancelScope(shield=True):
                try:
                    await self.run(interval)
                finally:
                    ended.set()

        async with anyio.create_task_group() as group:
            group.start_soon(shielded)
            try:
                await ended.wait()
            finally:
                self.request_stop()
                with anyio.CancelScope(shield=True):
                    await ended.wait()

    async def run_until_signalled(self, interval: float) -> None:
        """`run`, stopping cleanly on SIGTERM or SIGINT."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._stop_on_signal)
            await self.run(interval)
            group.cancel_scope.cancel()

    def request_stop(self) -> None:
        self._stop.set()
        self._request_heard.set()  # the request worker stops waiting too

    def _listen_for_requests(self) -> Callable[[], None]:
        """Have a request queued in this process (in any thread) wake the request worker."""
        token = anyio.lowlevel.current_token()

        def bell() -> None:  # in the committing thread: hand the wake-up to the event loop
            token.backend_class.run_sync_soon(self._hear_request, (), token.native_token)

        return work_queue.listen_for_requests(self.runtime.database, bell)

    def _hear_request(self) -> None:
        self._request_heard.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _stop_on_signal(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                log.info("stopping: no new work; in-flight work gets the grace period")
                self.request_stop()
                return

    # -- the single SQLite process ----------------------------------------------------------

    def _single_process(self) -> _SingleProcess:
        return _SingleProcess(self)

    def exclusive(self) -> _SingleProcess:
        """On SQLite, hold the database's one loop for the block (raises LoopAlreadyRunning
        at once when another process has it); `setpoint serve` takes it before it listens,
        so a second loop is refused before anything starts. Nothing on PostgreSQL."""
        return _SingleProcess(self)

    # -- timer ------------------------------------------------------------------------------

    async def _timer(self, interval: float) -> None:
        try:
            context = await self._tick_safely(interval)
            while not self.stopping:
                with anyio.move_on_after(interval):
                    await self._stop.wait()
                if self.stopping:
                    return
                await self._close_pass(context)
                self.resumed = await self._safely(in_thread(resume, self.runtime), "resume pass")
                context = await self._tick_safely(interval)
        finally:
            with anyio.CancelScope(shield=True):  # another replica's timer takes over at once
                await self._safely(
                    in_thread(leases.release, self.runtime.database, TIMER_KEY, self.holder),
                    "giving the timer back",
                )

    async def _tick_safely(self, interval: float) -> PassContext | None:
        return await self._safely(self._scheduled_tick(interval), "scheduled pass")

    async def _scheduled_tick(self, interval: float) -> PassContext:
        """The pass's tick on the replica that holds the timer; the others only close
        their passes (their workers take the lanes it queued)."""
        # Held for two intervals: a late tick keeps it; a dead holder loses it by then (at
        # once on this host), and another replica's timer takes over.
        timer = await in_thread(
            leases.acquire,
            self.runtime.database,
            TIMER_KEY,
            self.holder,
            2 * interval,
            clock=self.runtime.now,
        )
        if timer:
            return await self._tick()
        self.contexts.forget()
        return await self.contexts.get(self.runtime)

    async def _close_pass(self, context: PassContext | None) -> None:
        report, self._report = self._report, PassReport()
        if context is not None:
            await self._safely(passes.finish_pass(self.runtime, context, report), "pass record")
        if self.on_pass is not None:
            self.on_pass(report)

    async def _safely(self, step: Awaitable[T], what: str) -> T | None:
        """A long-running loop outlives one failed step (the database or a provider away for
        a moment); the next interval tries again. `run_once` lets failures through."""
        try:
            return await step
        except Exception as exc:
            log.error("%s failed: %s: %s", what, type(exc).__name__, redact(str(exc)))
            return None

    async def _tick(self) -> PassContext:
        """Discovery, then every lane queued for the scheduled pass."""
        self.contexts.forget()
        # The tick's context is the one its batches share, not one more build.
        context = await passes.start_pass(self.runtime, self._report, self.contexts.get)
        lanes = context.registry.all_lanes()
        await in_thread(self._enqueue, lanes)
        return context

    def _enqueue(self, lanes: list[str]) -> None:
        with session_scope(self.runtime.database, write_lock=True) as session:
            work_queue.enqueue(
                session, lanes, WorkPriority.scheduled, "scheduled pass", self.runtime.now()
            )

    # -- workers ----------------------------------------------------------------------------

    async def _run_workers(self, *, once: bool) -> None:
        """The workers claim and plan; the batches they start go on in a group of their own,
        so a worker claims again as soon as its batch is surveyed, however long its lanes
        take. Returns once the workers stopped and every batch ended."""
        async with anyio.create_task_group() as batches:
            self._batches = batches
            async with anyio.create_task_group() as workers:
                count = self.runtime.settings.loop_workers
                for index in range(count):
                    workers.start_soon(self._work_loop, once, index / count)
                if not once:
                    workers.start_soon(self._work_loop, once, 0.0, True)

    async def _work_loop(self, once: bool, offset: float = 0.0, requests: bool = False) -> None:
        """Claim, start the batch, claim again once it is planned. Idle workers look in
        turn (`offset`: this one's share of a poll), so the loop looks `loop_workers` times
        a poll. `requests`: the request worker, which claims requests only, and looks
        again as soon as this process queues one."""
        settings = self.runtime.settings
        if offset and not once:
            with anyio.move_on_after(offset * settings.loop_poll_seconds):
                await self._stop.wait()
        while not self.stopping:
            if requests:  # a request queued from now on (during the claim, too) is heard
                self._request_heard = anyio.Event()
            heard = self._request_heard if requests else self._stop
            try:
                claimed = await in_thread(self._claim, once, requests_only=requests)
            except SQLAlchemyError as exc:
                if once:
                    raise
                log.error("claiming work failed: %s", type(exc).__name__)
                claimed = []
            if not claimed:
                if once and claimed is not None:
                    return
                with anyio.move_on_after(settings.loop_poll_seconds):
                    await heard.wait()
                continue
            planned = anyio.Event()
            assert self._batches is not None
            self._batches.start_soon(self._work, claimed, planned)
            if not requests:  # requests are surveyed alone: the next one waits for none
                await planned.wait()  # its lanes go on by themselves; this worker claims again

    def lane_capacity(self) -> int:
        """Lanes one engine works at the same time: its workers' batches, in flight.
        Requests (workflow, webhook) may take one batch more, so a busy loop still starts
        them at once."""
        settings = self.runtime.settings
        return settings.loop_workers * settings.loop_batch_size

    def _claim(self, once: bool, *, requests_only: bool = False) -> list[ClaimedWork] | None:
        """Claimed lanes (none: nothing is due); None when there is no room for what is.
        `requests_only`: the request worker's claim, which has the requests' batch of room."""
        settings = self.runtime.settings
        room = self.lane_capacity() - len(self._in_flight)
        requests_only = requests_only or room <= 0
        if requests_only:
            room += settings.loop_batch_size
        if room <= 0:
            return None
        with session_scope(self.runtime.database, write_lock=True) as session:
            claimed = work_queue.claim(
                session,
                self.worker,
                self.runtime.now(),
                limit=min(settings.loop_batch_size, room),
                hold_seconds=settings.loop_claim_hold_seconds,
                exclude=self._worked_still_queued if once else (),
                holder=self.holder,
                requests_only=requests_only,
            )
        for work in claimed:
            self._in_flight[work.lane] = work
        return None if requests_only and not claimed else claimed

    async def _work(self, claimed: list[ClaimedWork], planned: anyio.Event) -> None:
        """One batch: each lane finished (queue row, operations, report) the moment its
        verdict is known; what is left when the batch ends is finished then."""
        lanes = [work.lane for work in claimed]
        by_lane = {work.lane: work for work in claimed}
        # A duration for the work log, not a time of day: real elapsed time, which the
        # runtime's clock (moved by tests) must not shorten or stretch.
        started = time.monotonic()
        finished: set[str] = set()

        async def finish(verdicts: list[LaneVerdict]) -> None:
            with anyio.CancelScope(shield=True):
                works = [by_lane[v.lane] for v in verdicts if v.lane in by_lane]
                await self._finish(works, verdicts, started, stopped=False)
            finished.update(v.lane for v in verdicts)

        crashed: list[LaneVerdict] = []
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        stopped = True  # until the batch ends on its own: cancelled, or it crashed
        # A workflow's requests, claimed alone: someone polls for them, so their provider
        # calls get the next free connection before the scheduled lanes' (`urgency.py`).
        asked = all(work.priority is WorkPriority.workflow for work in claimed)
        try:
            with scope, urgent() if asked else nullcontext():
                # A webhook says where to look, never what is true: such a batch looks
                # (discovery) before it plans, so a push or a new PR is seen now, not at
                # the next timer tick.
                look = any(work.priority is WorkPriority.webhook for work in claimed)
                crashed, stopped = await self._verdicts(lanes, finish, planned, discover=look)
        finally:
            planned.set()
            self._scopes.discard(scope)
            rest = [work for work in claimed if work.lane not in finished]
            if rest or stopped:
                late = [v for v in crashed if v.lane not in finished]
                with anyio.CancelScope(shield=True):
                    await self._finish(rest, late, started, stopped=stopped)

    async def _verdicts(
        self,
        lanes: list[str],
        finish: Callable[[list[LaneVerdict]], Awaitable[None]],
        planned: anyio.Event,
        *,
        discover: bool = False,
    ) -> tuple[list[LaneVerdict], bool]:
        """Work the batch; when it crashed, verdicts for its lanes (those not finished yet
        back off) and True: its operations and any apply it left are for the resume pass."""
        try:
            await work_batch(
                self.runtime,
                lanes,
                finish,
                self.contexts,
                self._report,
                discover=discover,
                planned=planned,
                requests_first=self.requests_first,
            )
            return [], False
        except Exception as exc:  # the batch's lanes back off; the loop outlives one batch
            log.exception("a batch of %d lane(s) failed", len(lanes))
            detail = redact(f"{type(exc).__name__}: {exc}")
            return [
                LaneVerdict(
                    LaneResult(lane, LaneOutcome.apply_failed, "", detail), FailureClass.temporary
                )
                for lane in lanes
            ], True

    async def _finish(
        self,
        claimed: list[ClaimedWork],
        verdicts: list[LaneVerdict],
        started: float,
        *,
        stopped: bool,
    ) -> None:
        try:
            self._worked_still_queued.update(await in_thread(self._finish_rows, claimed, verdicts))
            if stopped:  # cancelled or crashed: record what stopped, its claims given back
                await in_thread(resume, self.runtime)
        except SQLAlchemyError as exc:  # the claims lapse; the lanes are worked again then
            log.error("finishing %d lane(s) failed: %s", len(claimed), type(exc).__name__)
            self._worked_still_queued.update(v.lane for v in verdicts)  # but not in this run
        ended = time.monotonic()
        for verdict in verdicts:
            self.work_log.append(
                WorkInterval(verdict.lane, self.worker, started, ended, verdict.result.outcome)
            )
            self._report.lanes.append(verdict.result)
            if self.on_result is not None:
                self.on_result(verdict.result)
        for work in claimed:
            self._in_flight.pop(work.lane, None)

    def _finish_rows(self, claimed: list[ClaimedWork], verdicts: list[LaneVerdict]) -> set[str]:
        with session_scope(self.runtime.database, write_lock=True) as session:
            return finish(
                session,
                self.worker,
                claimed,
                verdicts,
                self.runtime.settings,
                now=self.runtime.now(),
                draw=self.draw,
            )

    # -- feedback ---------------------------------------------------------------------------

    async def _send_feedback(self) -> None:
        """Feedback an apply could not deliver at once (GitHub away or slow) goes out when
        its own backoff says, whatever the lanes do meanwhile."""
        poll = self.runtime.settings.loop_poll_seconds
        while not self.stopping:
            with anyio.move_on_after(poll):
                await self._stop.wait()
            if not self.stopping:
                await self._safely(self._feedback_due(), "sending feedback")

    async def _feedback_due(self) -> None:
        await send_notifications_due(self.runtime)  # a sink's retries keep their own times
        if not await in_thread(_feedback_waiting, self.runtime):
            return
        context = await self.contexts.get(self.runtime)
        await send_feedback(self.runtime, context.registry.kinds, draw=self.draw)

    # -- claims and shutdown ----------------------------------------------------------------

    async def _keep_claims(self) -> None:
        hold = self.runtime.settings.loop_claim_hold_seconds
        while True:
            await anyio.sleep(hold / 3)
            lanes = list(self._in_flight)
            if not lanes:
                continue
            try:
                lost = await in_thread(self._extend, lanes, hold)
            except SQLAlchemyError as exc:  # the next beat tries again, before the claims lapse
                log.warning("renewing claims failed: %s", type(exc).__name__)
                continue
            lost = [lane for lane in lost if lane in self._in_flight]  # not finished since
            if lost:
                log.warning("claims lapsed on %d lane(s): %s", len(lost), ", ".join(lost))

    def _extend(self, lanes: list[str], hold: float) -> list[str]:
        until = self.runtime.now() + timedelta(seconds=hold)
        with session_scope(self.runtime.database) as session:
            return work_queue.extend_claims(session, self.worker, lanes, until)

    async def _enforce_grace(self) -> None:
        await self._stop.wait()
        await anyio.sleep(self.runtime.settings.loop_shutdown_grace_seconds)
        for scope in list(self._scopes):
            scope.cancel()


def _feedback_waiting(runtime: Runtime) -> bool:
    with session_scope(runtime.database) as session:
        return feedback_deliveries.any_delivery_due(session, runtime.now())


class _SingleProcess:
    """On SQLite, hold the loop's own lease for as long as the loop runs. Re-entrant: the
    innermost of two nested holds leaves the lease to the outer one."""

    def __init__(self, engine: LoopEngine) -> None:
        self.loop = engine
        self.held: leases.HeldLanes | None = None

    async def __aenter__(self) -> None:
        runtime = self.loop.runtime
        if runtime.database.dialect.name != "sqlite" or self.loop.exclusive_held:
            return
        try:
            self.held = await in_thread(
                leases.take_all,
                runtime.database,
                [SQLITE_LOOP_KEY],
                self.loop.holder,
                runtime.settings.lease_ttl_seconds,
                clock=runtime.now,
            )
        except LaneBusy as busy:
            raise LoopAlreadyRunning(busy.holder or "another process") from None
        self.held.start_heartbeat()
        self.loop.exclusive_held = True

    async def __aexit__(self, *_: object) -> None:
        held = self.held
        if held is None:
            return
        self.loop.exclusive_held = False
        with anyio.CancelScope(shield=True):
            await in_thread(held.stop_heartbeat)
            await in_thread(leases.release, held.engine, SQLITE_LOOP_KEY, held.holder)
