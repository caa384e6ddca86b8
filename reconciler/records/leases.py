"""Lane leases: one worker per lane across processes and replicas (Invariant 10).

A lease is a row keyed by lane. Taking one is an INSERT, or, when the row exists, an UPDATE
that only matches an expired lease or one the caller already holds; the database decides
which of two racing workers matched, so exactly one wins on SQLite and PostgreSQL alike.
Expiry uses the workers' clocks: keep the TTL well above any clock skew between replicas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from reconciler.errors import LaneBusy, LeaseLost
from reconciler.records.columns import UTCDateTime, utcnow
from reconciler.records.database import in_thread


class LaneLease(SQLModel, table=True):
    """At most one holder per lane, across processes and replicas sharing the database."""

    __tablename__ = "lane_leases"

    lane: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


_leases: sa.Table = LaneLease.__table__  # type: ignore[attr-defined]


def acquire(engine: Engine, lane: str, holder: str, ttl_seconds: float) -> bool:
    """Take the lane if it is free, expired, or already ours; False when someone else has it."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    try:
        with engine.begin() as conn:
            conn.execute(
                _leases.insert().values(
                    lane=lane, holder=holder, acquired_at=now, expires_at=expires
                )
            )
        return True
    except IntegrityError:
        pass
    with engine.begin() as conn:
        taken: CursorResult[tuple[()]] = conn.execute(
            _leases.update()
            .where(
                _leases.c.lane == lane,
                sa.or_(_leases.c.expires_at <= now, _leases.c.holder == holder),
            )
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
        return taken.rowcount == 1


def renew(engine: Engine, lane: str, holder: str, ttl_seconds: float) -> bool:
    """Extend our lease; False when the row is gone or someone else took it over."""
    with engine.begin() as conn:
        renewed: CursorResult[tuple[()]] = conn.execute(
            _leases.update()
            .where(_leases.c.lane == lane, _leases.c.holder == holder)
            .values(expires_at=utcnow() + timedelta(seconds=ttl_seconds))
        )
        return renewed.rowcount == 1


def release(engine: Engine, lane: str, holder: str) -> bool:
    """Give the lane up; releasing a lease someone else now holds does nothing."""
    with engine.begin() as conn:
        released: CursorResult[tuple[()]] = conn.execute(
            _leases.delete().where(_leases.c.lane == lane, _leases.c.holder == holder)
        )
        return released.rowcount == 1


def current(engine: Engine, lane: str) -> LaneLease | None:
    """The lease of record for a lane, expired or not."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(_leases).where(_leases.c.lane == lane)).mappings().first()
    return LaneLease.model_validate(dict(row)) if row else None


@dataclass(frozen=True)
class HeldLanes:
    engine: Engine
    lanes: tuple[str, ...]
    holder: str
    ttl_seconds: float

    def renew(self) -> None:
        """Extend every lease; raises LeaseLost if any was taken over, so work stops."""
        for lane in self.lanes:
            if not renew(self.engine, lane, self.holder, self.ttl_seconds):
                raise LeaseLost(lane)


def take_all(engine: Engine, lanes: Iterable[str], holder: str, ttl_seconds: float) -> HeldLanes:
    """Take every lane, or none: LaneBusy after giving back what was taken.

    Lanes are taken in sorted order, so two workers wanting overlapping sets cannot each
    hold a part the other waits for.
    """
    wanted = tuple(sorted(set(lanes)))
    taken: list[str] = []
    try:
        for lane in wanted:
            if not acquire(engine, lane, holder, ttl_seconds):
                lease = current(engine, lane)
                raise LaneBusy(
                    lane, lease.holder if lease else None, lease.expires_at if lease else None
                )
            taken.append(lane)
    except BaseException:
        _release_all(engine, taken, holder)
        raise
    return HeldLanes(engine, wanted, holder, ttl_seconds)


def _release_all(engine: Engine, lanes: Iterable[str], holder: str) -> None:
    for lane in reversed(list(lanes)):
        release(engine, lane, holder)


@contextmanager
def hold(
    engine: Engine, lanes: Iterable[str], holder: str, ttl_seconds: float = 900
) -> Iterator[HeldLanes]:
    """Hold every lane for the block, or none (see `take_all`)."""
    held = take_all(engine, lanes, holder, ttl_seconds)
    try:
        yield held
    finally:
        _release_all(engine, held.lanes, holder)


@asynccontextmanager
async def holding(
    engine: Engine, lanes: Iterable[str], holder: str, ttl_seconds: float = 900
) -> AsyncIterator[HeldLanes]:
    """`hold` for async code: the database calls run off the event loop."""
    held = await in_thread(take_all, engine, lanes, holder, ttl_seconds)
    try:
        yield held
    finally:
        await in_thread(_release_all, engine, held.lanes, holder)
