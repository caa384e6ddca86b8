"""Notifications: what went wrong, told to the operator's sinks once.

At the end of each pass (`notify_pass`), and of each apply an operator or a workflow made
(`notify_apply`, from `core/apply.apply_plan`), the lanes with news are read back from their
status, and each state change that needs a person becomes an event (`events_of_pass`): an
apply that failed, a lane Degraded or Stalled (a runner lane Stalled: a runner unhealthy),
credentials refused, a plan blocked by a guard, a preview torn down, the audit chain broken.
An event's key names the change (the lane, its reason, and when its Ready condition last
moved), so the same change is recorded once per sink however many passes and applies see
it (`records/notifications`). Due rows are then sent, each sink's grouped into one message,
at most `notify_messages_per_minute` per sink; a failed send is tried again on its own
backoff, and nothing here ever fails or holds up a lane. Sink URLs and the webhook key never appear in records, logs or errors.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio

from providers.notify.sinks import Message, NotDelivered, NotificationItem, Sink, build_sinks
from reconciler.core.notices import (
    ENGINE_NOTICES,
    ENGINE_WORDS,
    EngineNotice,
    LaneNotices,
    Notice,
)
from reconciler.core.outcomes import LaneOutcome
from reconciler.core.plans import BlockerType
from reconciler.loop.backoff import retry_delay
from reconciler.records import notifications, status
from reconciler.records.database import in_thread, session_scope
from reconciler.records.notifications import NewNotification, Notification
from reconciler.records.status import LaneStatusRow, Reason
from reconciler.runtime import Runtime
from reconciler.secret_values import redact, register_secret
from reconciler.settings import Settings

log = logging.getLogger("setpoint.notify")

# Blockers that are one of the engine's guards holding a plan back (not time, not a
# provider's mood); a kind's own reasons are told as the lane's Stalled state.
GUARD_BLOCKERS = frozenset(
    {
        BlockerType.blast_radius_exceeded,
        BlockerType.protected_lane,
        BlockerType.not_owned,
    }
)
_APPLY_FAILED = frozenset({Reason.apply_failed, Reason.apply_incomplete, Reason.interrupted})
_RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Event:
    """One state change to tell of; `key` names it (the same change has the same key)."""

    key: str
    trigger: str
    lane: str | None
    title: str
    body: str
    link: str | None


@dataclass(frozen=True)
class LaneNewsItem:
    """A lane a pass had news of: its outcome and plan (what `PassReport` lists)."""

    lane: str
    outcome: str
    plan_id: str
    notices: LaneNotices = ENGINE_WORDS  # the lane's kind's own words, where it has any


def lane_link(settings: Settings, lane: str) -> str | None:
    """The lane's page under `SETPOINT_PUBLIC_URL`; None when no address is known."""
    if settings.public_url is None or ":" not in lane:
        return None
    kind, name = lane.split(":", 1)
    return f"{settings.public_url.rstrip('/')}/lanes/{kind}/{name}"


def trigger_of(ready: dict[str, Any], stalled: bool, notices: LaneNotices) -> Notice | None:
    """Which trigger a lane's status is, if it needs a person; a Stalled lane in its kind's
    words (`notices`)."""
    reason = ready.get("reason", "")
    if reason == Reason.degraded:
        return ENGINE_NOTICES[EngineNotice.lane_degraded]
    if reason in _APPLY_FAILED:
        return ENGINE_NOTICES[EngineNotice.apply_failed]
    if reason == BlockerType.credentials_refused:
        return ENGINE_NOTICES[EngineNotice.credentials_refused]
    if reason in GUARD_BLOCKERS:
        return ENGINE_NOTICES[EngineNotice.plan_blocked]
    if stalled:
        return notices.when_stalled()
    return None


def _lane_event(settings: Settings, notice: Notice, lane: str, key: str, said: str) -> Event:
    return Event(
        key=f"{notice.code}:{lane}:{key}",
        trigger=notice.code,
        lane=lane,
        title=f"Setpoint: {lane}: {notice.title}",
        body=redact(f"{said} (see `setpoint status {lane}`)"),
        link=lane_link(settings, lane),
    )


def events_of_pass(
    settings: Settings, news: Sequence[LaneNewsItem], rows: dict[str, LaneStatusRow]
) -> list[Event]:
    """The events in a pass's lanes with news, from their status as it now stands."""
    events = []
    for item in news:
        row = rows.get(item.lane)
        if row is None:
            removed = item.notices.removed
            if removed is not None and item.outcome == LaneOutcome.applied:
                said = f"plan {item.plan_id} removed the lane and its objects"
                events.append(_lane_event(settings, removed, item.lane, item.plan_id, said))
            continue
        conditions = {c["type"]: c for c in row.conditions}
        ready = conditions.get("Ready", {})
        stalled = conditions.get("Stalled", {}).get("status") == "True"
        notice = trigger_of(ready, stalled, item.notices)
        if notice is None:
            continue
        key = f"{ready.get('reason')}:{ready.get('lastTransitionTime')}"
        said = str(ready.get("message") or ready.get("reason"))
        events.append(_lane_event(settings, notice, item.lane, key, said))
    return events


def chain_broken_event(problem: str) -> Event:
    return Event(
        key=f"{EngineNotice.audit_chain_broken}:{problem[:200]}",
        trigger=EngineNotice.audit_chain_broken,
        lane=None,
        title=f"Setpoint: {ENGINE_NOTICES[EngineNotice.audit_chain_broken].title}",
        body=redact(f"{problem} (run `setpoint audit verify`)"),
        link=None,
    )


def sinks_of(settings: Settings) -> list[Sink]:
    """The operator's sinks. Their URLs and the webhook key become known secrets first, so
    no message, log line or recorded answer can carry them."""
    secret = settings.notify_webhook_secret
    urls = {name: url.get_secret_value() for name, url in settings.notify_sinks.items()}
    for value in [*urls.values(), *([secret.get_secret_value()] if secret else [])]:
        register_secret(value)
    return build_sinks(
        urls,
        webhook_secret=secret.get_secret_value() if secret else None,
        timeout=settings.notify_timeout_seconds,
    )


async def notify_pass(runtime: Runtime, news: Sequence[LaneNewsItem]) -> list[str]:
    """Record the pass's events for every sink, then send what is due. Problems, one line
    each; never raises for a sink."""
    if not runtime.settings.notify_sinks:
        return []
    rows = await in_thread(status_rows, runtime, [n.lane for n in news])
    events = events_of_pass(runtime.settings, news, rows)
    return await notify(runtime, events)


async def notify_apply(runtime: Runtime, news: Sequence[LaneNewsItem]) -> list[str]:
    """An operator's or a workflow's apply, told like a pass's lanes (`notify_pass` is for
    scheduled passes, grouped per pass): its lanes' events (the apply failed, its plan was
    blocked by a guard, a preview torn down) are recorded at once, then what is due is sent
    for at most `notify_timeout_seconds`; what has not left by then stays due, for the
    loop's sender or the next pass. Problems, one line each; never raises: the apply's
    result stands whatever becomes of its notifications."""
    if not runtime.settings.notify_sinks:
        return []
    try:
        sinks = sinks_of(runtime.settings)
        rows = await in_thread(status_rows, runtime, [n.lane for n in news])
        events = events_of_pass(runtime.settings, news, rows)
        if events:
            await in_thread(record_events, runtime, [s.name for s in sinks], events)
        with anyio.move_on_after(runtime.settings.notify_timeout_seconds):
            return await send_due(runtime, sinks)
    except Exception as exc:  # the records or a sink's set-up: the apply is done all the same
        problem = redact(f"notifying of the apply failed: {type(exc).__name__}: {exc}")
        log.error("%s", problem)
        return [problem]
    return ["notifications not sent within the time allowed: they stay due"]


async def notify(runtime: Runtime, events: Sequence[Event]) -> list[str]:
    try:
        sinks = sinks_of(runtime.settings)
    except ValueError as exc:
        return [str(exc)]
    if events:
        await in_thread(record_events, runtime, [s.name for s in sinks], events)
    return await send_due(runtime, sinks)


def status_rows(runtime: Runtime, lanes: list[str]) -> dict[str, LaneStatusRow]:
    wanted = set(lanes)
    return {row.lane: row for row in status.all_statuses(runtime.database) if row.lane in wanted}


def record_events(runtime: Runtime, sinks: list[str], events: Sequence[Event]) -> int:
    items = [
        NewNotification(sink, e.key, e.trigger, e.lane, e.title, e.body, e.link)
        for sink in sinks
        for e in events
    ]
    with session_scope(runtime.database, write_lock=True) as session:
        return notifications.add_new(session, items, runtime.now())


async def send_notifications_due(runtime: Runtime) -> list[str]:
    """The loop's sender: notifications whose retry time has come, between passes."""
    if not runtime.settings.notify_sinks:
        return []
    if not await in_thread(_any_due, runtime):
        return []
    return await notify(runtime, [])


def _any_due(runtime: Runtime) -> bool:
    with session_scope(runtime.database) as session:
        return notifications.any_due(session, runtime.now())


async def send_due(
    runtime: Runtime,
    sinks: Sequence[Sink],
    draw: Callable[[float, float], float] = random.uniform,
) -> list[str]:
    """Send each sink's due rows as one message; what did not land, one line each."""
    holder = f"{runtime.actor}:notify:{secrets.token_hex(3)}"
    problems = []
    for sink in sinks:
        problem = await _send_sink(runtime, sink, holder, draw)
        if problem:
            problems.append(problem)
    return problems


async def _send_sink(
    runtime: Runtime, sink: Sink, holder: str, draw: Callable[[float, float], float]
) -> str | None:
    rows, wait_until = await in_thread(_claim, runtime, sink.name, holder)
    if not rows:
        return None
    ids = [int(r.id or 0) for r in rows]
    if wait_until is not None:  # the sink's rate limit: the rows wait their turn
        await in_thread(_release, runtime, ids, holder, wait_until)
        return None
    message = Message(secrets.token_hex(8), tuple(_item(r) for r in rows))
    try:
        answer = await sink.send(message)
    except NotDelivered as exc:
        return await _not_delivered(runtime, sink.name, rows, holder, exc, draw)
    except Exception as exc:  # a bug in a sink: recorded and given up, never raised
        log.exception("notification sink %s failed unexpectedly", sink.name)
        refused = NotDelivered(f"unexpected {type(exc).__name__}", transient=False)
        return await _not_delivered(runtime, sink.name, rows, holder, refused, draw)
    answer = {k: redact(v) if isinstance(v, str) else v for k, v in answer.items()}
    await in_thread(_mark, runtime, ids, holder, answer, message.message_id, None)
    return None


def _item(row: Notification) -> NotificationItem:
    return NotificationItem(row.trigger, row.lane, row.title, row.body, row.link)


async def _not_delivered(
    runtime: Runtime,
    sink: str,
    rows: list[Notification],
    holder: str,
    exc: NotDelivered,
    draw: Callable[[float, float], float],
) -> str:
    settings = runtime.settings
    attempts = max(r.attempts for r in rows) + 1
    retry_at: datetime | None = None
    if exc.transient and attempts < settings.notify_max_attempts:
        delay = retry_delay(
            attempts,
            base=settings.loop_backoff_base_seconds,
            cap=settings.loop_backoff_cap_seconds,
            draw=draw,
        )
        retry_at = runtime.now() + timedelta(seconds=delay)
    message = redact(str(exc))
    answer = {"error": message, "transient": exc.transient}
    ids = [int(r.id or 0) for r in rows]
    await in_thread(_mark, runtime, ids, holder, answer, None, retry_at)
    when = f"tried again after {retry_at:%H:%M:%S} UTC" if retry_at else "given up"
    log.warning("notification to %s did not land (%s): %s", sink, when, message)
    return f"notification to {sink} did not land ({when}): {message}"


def _claim(runtime: Runtime, sink: str, holder: str) -> tuple[list[Notification], datetime | None]:
    """The sink's due rows, claimed; and, when its rate limit is spent, when to try again."""
    now = runtime.now()
    with session_scope(runtime.database, write_lock=True) as session:
        rows = notifications.claim_due(
            session, sink, holder, now, hold_seconds=runtime.settings.loop_claim_hold_seconds
        )
        if not rows:
            return [], None
        sent = notifications.messages_since(session, sink, now - _RATE_WINDOW)
        spent = sent >= runtime.settings.notify_messages_per_minute
        return rows, (now + _RATE_WINDOW if spent else None)


def _release(runtime: Runtime, ids: list[int], holder: str, due_at: datetime) -> None:
    with session_scope(runtime.database) as session:
        notifications.release(session, ids, holder, due_at)


def _mark(
    runtime: Runtime,
    ids: list[int],
    holder: str,
    answer: dict[str, Any],
    message_id: str | None,
    retry_at: datetime | None,
) -> None:
    with session_scope(runtime.database) as session:
        notifications.mark_sent(
            session,
            ids,
            holder,
            answer=answer,
            now=runtime.now(),
            message_id=message_id,
            retry_at=retry_at,
        )


async def send_test(runtime: Runtime) -> list[tuple[str, str, str]]:
    """`setpoint notify test`: one message to every sink, recorded like any other. Each
    sink's name, the row's state (delivered, pending: tried again later, failed) and answer."""
    sinks = sinks_of(runtime.settings)
    event = Event(
        key=f"{EngineNotice.test}:{secrets.token_hex(6)}",
        trigger=EngineNotice.test,
        lane=None,
        title=f"Setpoint: {ENGINE_NOTICES[EngineNotice.test].title}",
        body=f"a test message from {runtime.actor}: this sink works",
        link=runtime.settings.public_url,
    )
    await in_thread(record_events, runtime, [s.name for s in sinks], [event])
    await send_due(runtime, sinks)
    rows = await in_thread(_rows_of_key, runtime, event.key)
    return [(r.sink, r.state, _said(r)) for r in rows]


def _said(row: Notification) -> str:
    answer = row.answer or {}
    if "error" in answer:
        return str(answer["error"])
    if row.state == "pending":
        return "waits for the sink's rate limit"
    return ", ".join(f"{k} {v}" for k, v in answer.items() if k != "text")


def _rows_of_key(runtime: Runtime, key: str) -> list[Notification]:
    with session_scope(runtime.database) as session:
        return notifications.with_key(session, key)
