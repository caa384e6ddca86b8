"""Feedback that follows the apply that caused it: recorded, then sent on its own schedule.

An apply tells the kinds of its lanes' news twice: "applying" when its actions start, and
the outcome when they end (`started_news`, `finished_news`). Each kind that announces
(`AnnouncingKind`) makes deliveries of the news (a PR comment and a GitHub deployment
status, for previews); they are recorded (`records/feedback_deliveries`) before anything
is sent, and sent by `send_feedback`: at once by the apply, within `feedback_wait_seconds`,
and later by the loop's sender for whatever did not land. A transient failure is tried
again on the delivery's own backoff; no failure ever fails or holds up a lane.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio

from reconciler.core.outcomes import ActionResult, LaneOutcome, lane_outcome
from reconciler.core.plans import Plan
from reconciler.errors import FeedbackNotDelivered
from reconciler.kinds.base import AnnouncingKind, Feedback, LaneKind, LaneNews
from reconciler.loop.backoff import retry_delay
from reconciler.records import feedback_deliveries
from reconciler.records.database import in_thread, session_scope
from reconciler.records.feedback_deliveries import FeedbackDelivery, NewDelivery
from reconciler.runtime import Runtime
from reconciler.secret_values import redact

if TYPE_CHECKING:
    from reconciler.core.apply import ActionReport

log = logging.getLogger("setpoint.feedback")

_ROUNDS = 20  # a channel's deliveries are sent in turn: at most this many per call


def started_news(plan: Plan) -> list[LaneNews]:
    """News of every lane the plan has actions for, as its actions start."""
    ops: dict[str, list[str]] = {}
    for action in plan.actions:
        ops.setdefault(action.lane, []).append(action.op)
    return [
        LaneNews(
            lane,
            LaneOutcome.applying,
            plan.plan_id,
            f"applying {len(names)} action(s): {', '.join(dict.fromkeys(names))}",
        )
        for lane, names in ops.items()
    ]


def finished_news(plan_id: str, reports: Sequence[ActionReport]) -> list[LaneNews]:
    """Each lane's outcome once its actions ended: its worst action's, told by the first
    action that did not complete, or else by its last one (a deploy says its health)."""
    by_lane: dict[str, list[ActionReport]] = {}
    for report in reports:
        by_lane.setdefault(report.lane, []).append(report)
    news = []
    for lane, lane_reports in by_lane.items():
        outcome = lane_outcome(r.result for r in lane_reports)
        telling = next(
            (r for r in lane_reports if r.result is not ActionResult.ok), lane_reports[-1]
        )
        detail = f"{telling.action_id}: {telling.message}"
        news.append(LaneNews(lane, outcome, plan_id, detail))
    return news


async def announce(runtime: Runtime, kinds: Sequence[LaneKind], news: Sequence[LaneNews]) -> int:
    """Record the deliveries the kinds make of `news`; how many."""
    items = [
        NewDelivery(kind.name, item.lane, item.channel, item.payload)
        for kind in kinds
        if isinstance(kind, AnnouncingKind) and news
        for item in kind.feedback(news)
    ]
    if not items:
        return 0
    await in_thread(_add, runtime, items)
    return len(items)


def _add(runtime: Runtime, items: list[NewDelivery]) -> None:
    with session_scope(runtime.database) as session:
        feedback_deliveries.add_deliveries(session, items, runtime.now())


async def send_feedback(
    runtime: Runtime,
    kinds: Sequence[LaneKind],
    *,
    lanes: Collection[str] | None = None,
    draw: Callable[[float, float], float] = random.uniform,
) -> list[str]:
    """Send the due deliveries (about `lanes`, or all), each channel's in order. Returns
    what did not land, one line each. Never raises for a delivery that failed."""
    senders = {kind.name: kind for kind in kinds if isinstance(kind, AnnouncingKind)}
    if not senders:
        return []
    holder = f"{runtime.actor}:feedback:{secrets.token_hex(3)}"
    problems: list[str] = []
    for _ in range(_ROUNDS):
        claimed = await in_thread(_claim, runtime, holder, senders, lanes)
        if not claimed:
            break
        for row in claimed:
            problem = await _send_one(runtime, senders[row.kind], row, holder, draw)
            if problem:
                problems.append(problem)
    return problems


async def send_feedback_within(
    runtime: Runtime, kinds: Sequence[LaneKind], lanes: Collection[str]
) -> None:
    """`send_feedback` for `lanes`, for at most `feedback_wait_seconds`: what is left (or
    failed to be recorded) is the loop's sender's to send."""
    with anyio.move_on_after(runtime.settings.feedback_wait_seconds):
        try:
            await send_feedback(runtime, kinds, lanes=lanes)
        except Exception as exc:  # the records; the lane's own result stands
            log.error("sending feedback failed: %s: %s", type(exc).__name__, redact(str(exc)))


def _claim(
    runtime: Runtime, holder: str, kinds: Collection[str], lanes: Collection[str] | None
) -> list[FeedbackDelivery]:
    with session_scope(runtime.database, write_lock=True) as session:
        return feedback_deliveries.claim_due(
            session,
            holder,
            runtime.now(),
            hold_seconds=runtime.settings.loop_claim_hold_seconds,
            kinds=kinds,
            lanes=lanes,
        )


async def _send_one(
    runtime: Runtime,
    kind: AnnouncingKind,
    row: FeedbackDelivery,
    holder: str,
    draw: Callable[[float, float], float],
) -> str | None:
    feedback = Feedback(row.lane, row.channel, dict(row.payload))
    row_id = int(row.id or 0)
    try:
        answer = await kind.deliver(feedback)
    except FeedbackNotDelivered as exc:
        return await _failed(runtime, row, holder, exc, draw)
    except Exception as exc:  # a bug in a kind's delivery: recorded, not tried again
        log.exception("feedback delivery %s failed unexpectedly", row_id)
        refused = FeedbackNotDelivered(f"unexpected {type(exc).__name__}: {exc}", transient=False)
        return await _failed(runtime, row, holder, refused, draw)
    await in_thread(_mark_delivered, runtime, row_id, holder, answer)
    return None


async def _failed(
    runtime: Runtime,
    row: FeedbackDelivery,
    holder: str,
    exc: FeedbackNotDelivered,
    draw: Callable[[float, float], float],
) -> str:
    message = redact(str(exc))
    retry_at = None
    if exc.transient:
        settings = runtime.settings
        delay = retry_delay(
            row.attempts + 1,
            base=settings.loop_backoff_base_seconds,
            cap=settings.loop_backoff_cap_seconds,
            draw=draw,
        )
        retry_at = runtime.now() + timedelta(seconds=max(delay, exc.retry_after or 0.0))
    answer = {"error": message, "transient": exc.transient}
    await in_thread(_mark_undelivered, runtime, int(row.id or 0), holder, answer, retry_at)
    when = f"tried again after {retry_at:%H:%M:%S} UTC" if retry_at else "not tried again"
    log.warning("feedback on %s did not land (%s): %s", row.lane, when, message)
    return f"{row.lane}: feedback did not land ({when}): {message}"


def _mark_delivered(runtime: Runtime, row_id: int, holder: str, answer: dict[str, Any]) -> None:
    with session_scope(runtime.database) as session:
        feedback_deliveries.mark_delivered(session, row_id, holder, answer, runtime.now())


def _mark_undelivered(
    runtime: Runtime, row_id: int, holder: str, answer: dict[str, Any], retry_at: Any
) -> None:
    with session_scope(runtime.database) as session:
        feedback_deliveries.mark_undelivered(
            session, row_id, holder, answer, runtime.now(), retry_at=retry_at
        )
