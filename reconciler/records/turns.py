"""Turns: a durable, ordered line per shared resource (a Dokploy server's build slot), so a
lane that waits for it parks instead of holding a worker and still keeps its place.

A lane's row is its place in the line, kept from when it first asked until it gives its turn
back: lanes get the resource in the order they first asked, at most `capacity` of them at
once, across processes and replicas. Every row has a lease, renewed each time its lane is
worked (a look at its build, a check whether its turn came); a row whose lease ran out (its
holder died, or stopped asking) is dropped before anyone is served, so a dead holder frees
the resource and a dead waiter gives up its place.

Taking a turn reads the line and writes what follows from it, so it runs alone per
resource: BEGIN IMMEDIATE on SQLite, a transaction-scoped advisory lock on PostgreSQL.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.records.columns import UTCDateTime
from reconciler.records.database import session_scope


class ResourceTurn(SQLModel, table=True):
    """One lane's place in the line for one resource: waiting, or holding it."""

    __tablename__ = "resource_turns"
    __table_args__ = (sa.UniqueConstraint("resource", "lane", name="uq_resource_turns_lane"),)

    seq: int | None = Field(default=None, primary_key=True)  # the order of first asking
    resource: str = Field(max_length=200, index=True)
    lane: str = Field(max_length=200)
    asked_at: datetime = Field(sa_type=UTCDateTime)
    holding_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_expires_at: datetime = Field(sa_type=UTCDateTime)


@dataclass(frozen=True)
class TurnAnswer:
    """What a lane asking for its turn was told."""

    granted: bool
    ahead: int  # lanes before it in the line (holders and earlier askers); 0 when granted
    holders: tuple[str, ...]  # the lanes holding the resource now
    waited_seconds: float = field(default=0.0, compare=False)  # since it first asked


def take(
    engine: Engine,
    resource: str,
    lane: str,
    *,
    capacity: int,
    now: datetime,
    lease_seconds: float,
    wait_in_line: bool = True,
) -> TurnAnswer:
    """Ask for `lane`'s turn at `resource`: granted when the lane holds it already, or when
    fewer than `capacity` lanes hold it and no lane that asked earlier still waits. Else the
    lane keeps (or takes, when it first asks) its place in the line. Either way its lease
    runs `lease_seconds` from `now`. `wait_in_line=False`: served whenever a place is free,
    before earlier askers (a lane whose work is under way already, and only looks at it)."""
    with session_scope(engine, write_lock=True) as session:
        _lock(session, resource)
        _drop_lapsed(session, resource, now)
        line = _line(session, resource)
        mine = next((row for row in line if row.lane == lane), None)
        if mine is None:
            mine = ResourceTurn(resource=resource, lane=lane, asked_at=now, lease_expires_at=now)
            session.add(mine)
            session.flush()
            line.append(mine)
        mine.lease_expires_at = now + timedelta(seconds=lease_seconds)
        holders = [row for row in line if row.holding_since is not None]
        if mine.holding_since is None:
            earlier = [r for r in line if r.holding_since is None and _before(r, mine)]
            free = capacity - len(holders)
            if free > 0 and (not wait_in_line or len(earlier) < free):
                mine.holding_since = now
                holders.append(mine)
        session.add(mine)
        held_by = tuple(row.lane for row in holders)
        waited = (now - mine.asked_at).total_seconds()
        if mine.holding_since is not None:
            return TurnAnswer(True, 0, held_by, waited)
        waiting_before = sum(1 for r in line if r.holding_since is None and _before(r, mine))
        return TurnAnswer(False, len(holders) + waiting_before, held_by, waited)


def keep(
    session: Session, resource: str, lane: str, *, now: datetime, lease_seconds: float
) -> None:
    """Renew `lane`'s place (held or waited for) for `lease_seconds` from `now`, in the
    caller's transaction; nothing when it has none (its lease ran out meanwhile)."""
    session.execute(
        sa.update(ResourceTurn)
        .where(col(ResourceTurn.resource) == resource, col(ResourceTurn.lane) == lane)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    )


def give_back(
    session: Session, resource: str, lane: str, *, capacity: int, now: datetime
) -> list[str]:
    """`lane` is done with `resource` (its build ended) or no longer waits, in the caller's
    transaction: the lanes next in line that a free place would now serve, to be woken."""
    session.execute(
        sa.delete(ResourceTurn).where(
            col(ResourceTurn.resource) == resource, col(ResourceTurn.lane) == lane
        )
    )
    live = [row for row in _line(session, resource) if row.lease_expires_at >= now]
    free = capacity - sum(1 for row in live if row.holding_since is not None)
    return [row.lane for row in live if row.holding_since is None][: max(free, 0)]


def line_of(engine: Engine, resource: str) -> list[ResourceTurn]:
    """The line for `resource`, first asker first (lapsed rows included, as stored)."""
    with session_scope(engine) as session:
        return _line(session, resource)


def _line(session: Session, resource: str) -> list[ResourceTurn]:
    query = select(ResourceTurn).where(ResourceTurn.resource == resource)
    return list(session.exec(query.order_by(col(ResourceTurn.seq))).all())


def _before(row: ResourceTurn, mine: ResourceTurn) -> bool:
    return (row.seq or 0) < (mine.seq or 0)


def _drop_lapsed(session: Session, resource: str, now: datetime) -> None:
    session.execute(
        sa.delete(ResourceTurn).where(
            col(ResourceTurn.resource) == resource, col(ResourceTurn.lease_expires_at) < now
        )
    )


def _lock(session: Session, resource: str) -> None:
    """On PostgreSQL, one taker per resource at a time until the transaction ends (SQLite's
    BEGIN IMMEDIATE already holds the whole database)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"setpoint-turn:{resource}".encode())
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
