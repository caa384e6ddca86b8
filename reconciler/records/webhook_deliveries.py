"""GitHub webhook deliveries already handled, by delivery id.

GitHub redelivers with the original `X-GitHub-Delivery`, so the id is what makes a
redelivery do nothing twice. A delivery is recorded in the same transaction as the work it
queues: either both happen or neither does, and a redelivery racing the original finds the
row (on PostgreSQL it waits for the original's commit) and queues nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel

from reconciler.records.columns import JSONDocument, UTCDateTime
from reconciler.records.database import table_of


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"

    delivery_id: str = Field(primary_key=True, max_length=100)
    event: str = Field(max_length=60)
    action: str | None = Field(default=None, max_length=60)
    lanes: list[str] = Field(sa_type=JSONDocument)  # what it queued
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)


_deliveries = table_of(WebhookDelivery)


def record_delivery(
    session: Session,
    delivery_id: str,
    event: str,
    action: str | None,
    lanes: Sequence[str],
    now: datetime,
) -> bool:
    """Record a delivery; False when it was recorded before (a redelivery)."""
    values = {
        "delivery_id": delivery_id[:100],
        "event": event[:60],
        "action": None if action is None else action[:60],
        "lanes": list(lanes),
        "received_at": now,
    }
    if session.get_bind().dialect.name == "postgresql":
        statement = postgresql.insert(_deliveries).values(values).on_conflict_do_nothing()
        return session.execute(statement.returning(_deliveries.c.delivery_id)).first() is not None
    result = session.execute(sqlite.insert(_deliveries).values(values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0) == 1)


def prune_deliveries(session: Session, older_than: datetime) -> int:
    """Forget deliveries received before `older_than` (GitHub redelivers for days, not months)."""
    result = session.execute(_deliveries.delete().where(_deliveries.c.received_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
