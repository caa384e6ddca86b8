"""Notifications: what Setpoint told an operator's sinks, and what came back.

One row per (sink, event): the event's `dedup_key` names the state change it tells of (a
lane turning Degraded at a time, a plan's failed apply), and a sink gets one row per key,
ever, so the same change is sent once however many passes see it. Due rows of a sink are
sent together as one message (a pass's news grouped); `message_id` names the message a row
went out in, and at most `limit` messages per sink leave in a window (rate limit). A failed
try puts the row back with its own due time (backoff); nothing waits for it. A row is claimed
while it is sent, so two senders never send it twice at once. No row holds a secret: titles
and bodies are made from lane names, states and redacted messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, UniqueConstraint, select

from reconciler.records.columns import JSONDocument, UTCDateTime
from reconciler.records.database import table_of

_CLAIM_WINDOW = 200


class NotificationState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # gave up: too many tries, or refused for good


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("sink", "dedup_key", name="uq_notifications_sink_dedup_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sink: str = Field(max_length=100)
    dedup_key: str = Field(max_length=300)
    trigger: str = Field(max_length=40)
    lane: str | None = Field(default=None, max_length=200, index=True)
    title: str = Field(max_length=300)
    body: str = Field(max_length=4000)
    link: str | None = Field(default=None, max_length=1000)
    state: str = Field(default=NotificationState.pending.value, max_length=20, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_id: str | None = Field(default=None, max_length=40)
    answer: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)


_table: sa.Table = table_of(Notification)


@dataclass(frozen=True)
class NewNotification:
    sink: str
    dedup_key: str
    trigger: str
    lane: str | None
    title: str
    body: str
    link: str | None


def add_new(session: Session, items: Sequence[NewNotification], now: datetime) -> int:
    """Record the items whose (sink, key) was never recorded; how many were new. Call under
    `session_scope(write_lock=True)`: two passes that see one change record it once."""
    if not items:
        return 0
    keys = {(i.sink, i.dedup_key) for i in items}
    known: set[tuple[str, str]] = {
        (str(sink), str(key))
        for sink, key in session.execute(
            sa.select(_table.c.sink, _table.c.dedup_key).where(
                _table.c.dedup_key.in_([k for _, k in keys])
            )
        ).all()
    }
    added = 0
    for item in items:
        key = (item.sink, item.dedup_key)
        if key in known:
            continue
        known.add(key)
        session.add(
            Notification(
                sink=item.sink,
                dedup_key=item.dedup_key[:300],
                trigger=item.trigger,
                lane=item.lane,
                title=item.title[:300],
                body=item.body[:4000],
                link=item.link,
                created_at=now,
                due_at=now,
            )
        )
        added += 1
    session.flush()
    return added


def any_due(session: Session, now: datetime) -> bool:
    """Whether some unsent row is due (a cheap look before building the sinks)."""
    query = (
        sa.select(_table.c.id)
        .where(_table.c.state == NotificationState.pending.value, _table.c.due_at <= now)
        .limit(1)
    )
    return session.execute(query).first() is not None


def messages_since(session: Session, sink: str, since: datetime) -> int:
    """How many messages went out to `sink` since `since` (for its rate limit)."""
    query = sa.select(sa.func.count(sa.distinct(_table.c.message_id))).where(
        _table.c.sink == sink, _table.c.delivered_at >= since
    )
    return int(session.execute(query).scalar_one())


def claim_due(
    session: Session, sink: str, holder: str, now: datetime, *, hold_seconds: float
) -> list[Notification]:
    """Claim the sink's due rows nobody holds, oldest first. Call under
    `session_scope(write_lock=True)`."""
    query = (
        select(Notification)
        .where(
            _table.c.sink == sink,
            _table.c.state == NotificationState.pending.value,
            _table.c.due_at <= now,
        )
        .order_by(_table.c.id)
        .limit(_CLAIM_WINDOW)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for row in session.exec(query):
        if row.claimed_until is not None and row.claimed_until > now:
            continue
        row.claimed_by, row.claimed_until = holder, now + timedelta(seconds=hold_seconds)
        session.add(row)
        claimed.append(row)
    session.flush()
    for row in claimed:
        session.expunge(row)
    return claimed


def mark_sent(
    session: Session,
    ids: Sequence[int],
    holder: str,
    *,
    answer: dict[str, Any],
    now: datetime,
    message_id: str | None,
    retry_at: datetime | None,
) -> None:
    """The end of one message's try: delivered (`message_id` set), due again at `retry_at`,
    or failed for good."""
    if message_id is not None:
        state = NotificationState.delivered
    elif retry_at is not None:
        state = NotificationState.pending
    else:
        state = NotificationState.failed
    values: dict[str, Any] = {
        "state": state.value,
        "answer": answer,
        "attempts": _table.c.attempts + 1,
        "claimed_by": None,
        "claimed_until": None,
    }
    if message_id is not None:
        values.update(delivered_at=now, message_id=message_id)
    if retry_at is not None:
        values["due_at"] = retry_at
    session.execute(
        _table.update()
        .where(_table.c.id.in_(list(ids)), _table.c.claimed_by == holder)
        .values(**values)
    )


def release(session: Session, ids: Sequence[int], holder: str, due_at: datetime) -> None:
    """Give claimed rows back unsent (the sink's rate limit), due again at `due_at`."""
    session.execute(
        _table.update()
        .where(_table.c.id.in_(list(ids)), _table.c.claimed_by == holder)
        .values(claimed_by=None, claimed_until=None, due_at=due_at)
    )


def with_key(session: Session, dedup_key: str) -> list[Notification]:
    """Every sink's row of one event."""
    query = select(Notification).where(_table.c.dedup_key == dedup_key).order_by(_table.c.sink)
    rows = list(session.exec(query))
    for row in rows:
        session.expunge(row)
    return rows


def recent(session: Session, *, lane: str | None = None, limit: int = 50) -> list[Notification]:
    """The newest notifications (of one lane), newest first."""
    query = select(Notification).order_by(_table.c.id.desc()).limit(limit)
    if lane is not None:
        query = query.where(_table.c.lane == lane)
    rows = list(session.exec(query))
    for row in rows:
        session.expunge(row)
    return rows


def prune_settled(session: Session, older_than: datetime) -> int:
    result = session.execute(
        _table.delete().where(
            _table.c.state != NotificationState.pending.value, _table.c.created_at < older_than
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
