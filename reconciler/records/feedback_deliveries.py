"""Feedback deliveries: what a kind told the outside world about a lane, and what came back.

One row per delivery (a PR comment and a GitHub deployment status, for previews): what was
sent (`payload`, which kinds build with no secret in it), when it was made, how many tries
it took, when it landed and the answer. Rows of one `channel` (one pull request) are sent
one at a time in the order they were made, so a "success" never lands before the "pending"
it follows. A transient failure puts the row back with its own due time (backoff); the
lane it is about never waits for it. A row is claimed while it is sent, so two senders (the
apply that made it, the loop's sender, another replica) never send it twice at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

from reconciler.records.columns import EnumText, JSONDocument, UTCDateTime
from reconciler.records.database import table_of

# How many undelivered rows one claim looks at: the oldest first, one per channel.
_CLAIM_WINDOW = 500


class DeliveryState(StrEnum):
    pending = "pending"  # not sent yet, or to be tried again at `due_at`
    delivered = "delivered"
    failed = "failed"  # refused for good (not transient): not tried again


class FeedbackDelivery(SQLModel, table=True):
    __tablename__ = "feedback_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    lane: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=200, index=True)
    payload: dict[str, Any] = Field(sa_type=JSONDocument)
    state: DeliveryState = Field(
        default=DeliveryState.pending, sa_type=EnumText(DeliveryState, 20), index=True
    )
    created_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answer: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)


_table = table_of(FeedbackDelivery)


@dataclass(frozen=True)
class NewDelivery:
    kind: str
    lane: str
    channel: str
    payload: dict[str, Any]


def add_deliveries(session: Session, items: Sequence[NewDelivery], now: datetime) -> list[int]:
    """Record deliveries to make, due now; their ids in order."""
    rows = [
        FeedbackDelivery(
            kind=item.kind,
            lane=item.lane,
            channel=item.channel[:200],
            payload=item.payload,
            created_at=now,
            due_at=now,
        )
        for item in items
    ]
    session.add_all(rows)
    session.flush()
    return [int(row.id) for row in rows if row.id is not None]


def claim_due(
    session: Session,
    holder: str,
    now: datetime,
    *,
    hold_seconds: float,
    kinds: Collection[str],
    lanes: Collection[str] | None = None,
) -> list[FeedbackDelivery]:
    """Claim the oldest undelivered row of each channel, when it is due and nobody holds it
    (a later row of a channel waits for the earlier one), for the `kinds` that can send it.
    `lanes`: only channels whose oldest row is about one of them. Call under
    `session_scope(write_lock=True)`."""
    query = (
        select(FeedbackDelivery)
        .where(_table.c.state == DeliveryState.pending.value)
        .order_by(_table.c.id)
        .limit(_CLAIM_WINDOW)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    first: dict[str, FeedbackDelivery] = {}
    for row in session.exec(query):
        first.setdefault(row.channel, row)
    claimed = []
    for row in first.values():
        held = row.claimed_until is not None and row.claimed_until > now
        if row.due_at > now or held or row.kind not in kinds:
            continue
        if lanes is not None and row.lane not in lanes:
            continue
        row.claimed_by = holder
        row.claimed_until = now + timedelta(seconds=hold_seconds)
        session.add(row)
        claimed.append(row)
    session.flush()
    return claimed


def any_delivery_due(session: Session, now: datetime) -> bool:
    """Whether some undelivered row is due (a cheap look before building the kinds)."""
    query = (
        sa.select(_table.c.id)
        .where(_table.c.state == DeliveryState.pending.value, _table.c.due_at <= now)
        .limit(1)
    )
    return session.execute(query).first() is not None


def mark_delivered(
    session: Session, row_id: int, holder: str, answer: dict[str, Any], now: datetime
) -> None:
    _finish(session, row_id, holder, state=DeliveryState.delivered, answer=answer, now=now)


def mark_undelivered(
    session: Session,
    row_id: int,
    holder: str,
    answer: dict[str, Any],
    now: datetime,
    *,
    retry_at: datetime | None,
) -> None:
    """A try that failed: due again at `retry_at`, or failed for good when that is None."""
    state = DeliveryState.pending if retry_at is not None else DeliveryState.failed
    _finish(session, row_id, holder, state=state, answer=answer, now=now, due_at=retry_at)


def _finish(
    session: Session,
    row_id: int,
    holder: str,
    *,
    state: DeliveryState,
    answer: dict[str, Any],
    now: datetime,
    due_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {
        "state": state.value,
        "answer": answer,
        "attempts": _table.c.attempts + 1,
        "claimed_by": None,
        "claimed_until": None,
    }
    if state is DeliveryState.delivered:
        values["delivered_at"] = now
    if due_at is not None:
        values["due_at"] = due_at
    session.execute(
        _table.update().where(_table.c.id == row_id, _table.c.claimed_by == holder).values(**values)
    )


def deliveries_of_lane(session: Session, lane: str) -> list[FeedbackDelivery]:
    """A lane's deliveries, oldest first."""
    query = select(FeedbackDelivery).where(_table.c.lane == lane).order_by(_table.c.id)
    return list(session.exec(query))


def prune_settled(session: Session, older_than: datetime) -> int:
    """Forget settled deliveries (delivered, or failed for good) made before `older_than`;
    pending ones are kept, however old."""
    result = session.execute(
        _table.delete().where(
            _table.c.state != DeliveryState.pending.value, _table.c.created_at < older_than
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
