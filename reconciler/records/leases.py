"""Lane leases: one worker per lane across processes and replicas (Invariant 10).

A lease is a row keyed by lane. Taking one is an INSERT, or, when the row exists, an UPDATE
that only matches an expired lease, one the caller already holds, or one whose holder is
known to be gone; the database decides which of two racing workers matched, so exactly one
wins on SQLite and PostgreSQL alike.

A lease survives only as long as its holder shows signs of life. The holder records who it
is (host, process id and that process's start time, plus the plan it works for) and a
heartbeat thread renews a short expiry while the work runs. A holder is gone when its
heartbeat is overdue, or, on this same host, at once when its process no longer exists
(the start time guards against a reused pid). A crash therefore frees its lanes within one
heartbeat TTL, and immediately for the next command on the same machine.

Expiry uses the workers' clocks (the runtime's clock, passed in as `clock`): keep the TTL well
above any clock skew between replicas. The heartbeat thread sleeps in real time; whether a
lease has lapsed is always decided by `clock`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel

from reconciler.errors import LaneBusy, LeaseLost
from reconciler.records.columns import UTCDateTime
from reconciler.records.database import in_thread, rows_changed, table_of

log = logging.getLogger("setpoint.leases")

DEFAULT_TTL_SECONDS = 30.0

# Where a lease reads the time: the runtime's clock (`Runtime.now`) in the engine. Every
# function that stamps or judges a lease takes it, with no default, so none reads the wall
# clock behind the runtime's back.
LeaseClock = Callable[[], datetime]


class LaneLease(SQLModel, table=True):
    """At most one holder per lane, across processes and replicas sharing the database."""

    __tablename__ = "lane_leases"

    lane: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(sa_type=UTCDateTime)  # the taker's clock
    expires_at: datetime = Field(sa_type=UTCDateTime)
    plan_id: str | None = Field(default=None, max_length=40)
    host: str | None = Field(default=None, max_length=200)
    pid: int | None = None
    # The holder process's start time (clock ticks since boot), so a reused pid is not
    # mistaken for the holder.
    pid_started: int | None = Field(default=None, sa_type=sa.BigInteger)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


_leases = table_of(LaneLease)
# Built once: every intent of an apply runs it, and building and keying the statement each
# time cost more than running it.
_CONFIRM = (
    _leases.update()
    .where(
        _leases.c.lane == sa.bindparam("lease_lane"),
        _leases.c.holder == sa.bindparam("lease_holder"),
    )
    .values(heartbeat_at=sa.bindparam("beat_at", type_=_leases.c.heartbeat_at.type))
)


@cache
def this_host() -> str:
    return socket.gethostname()


def process_started(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot; None when there is no such
    process or the platform does not say (then only the heartbeat tells)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[19]) if len(fields) > 19 else None


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a label for people, and the process behind it for liveness."""

    label: str
    plan_id: str | None = None
    host: str = field(default_factory=this_host)
    pid: int = field(default_factory=os.getpid)
    pid_started: int | None = field(default_factory=lambda: process_started(os.getpid()))

    def columns(self) -> dict[str, object]:
        return {
            "holder": self.label,
            "plan_id": self.plan_id,
            "host": self.host,
            "pid": self.pid,
            "pid_started": self.pid_started,
        }


def holder_gone(lease: LaneLease, now: datetime) -> bool:
    """True when the lease's holder shows no sign of life: its heartbeat is overdue, or it
    ran on this host and its process is gone."""
    if lease.expires_at <= now:
        return True
    return process_gone(lease.host, lease.pid, lease.pid_started)


def process_gone(host: str | None, pid: int | None, pid_started: int | None) -> bool:
    """True when the process `pid` (started at `pid_started`) ran on this host and no longer
    exists; a process on another host, or a platform that cannot tell, is never gone here."""
    if host != this_host() or pid is None or not Path("/proc/self/stat").exists():
        return False
    started = process_started(pid)
    return started is None or (pid_started is not None and started != pid_started)


def acquire(
    engine: Engine,
    lane: str,
    holder: Holder | str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    *,
    clock: LeaseClock,
) -> bool:
    """Take the lane if it is free, its holder is gone, or it is already ours."""
    return take(engine, lane, _as_holder(holder), ttl_seconds, clock=clock)[0]


def take(
    engine: Engine, lane: str, holder: Holder, ttl_seconds: float, *, clock: LeaseClock
) -> tuple[bool, LaneLease | None]:
    """(taken, the lease taken over from a holder that was gone, if any)."""
    now = clock()
    values = {**holder.columns(), "acquired_at": now, "heartbeat_at": now}
    values["expires_at"] = now + timedelta(seconds=ttl_seconds)
    try:
        with engine.begin() as conn:
            conn.execute(_leases.insert().values(lane=lane, **values))
        return True, None
    except IntegrityError:
        pass
    previous = current(engine, lane)
    if previous is None:  # released in between: try once more from the start
        return take(engine, lane, holder, ttl_seconds, clock=clock)
    if previous.holder != holder.label and not holder_gone(previous, now):
        return False, None
    # Compare-and-swap on what we read: if someone else took it meanwhile, we did not.
    with engine.begin() as conn:
        taken: CursorResult[tuple[()]] = conn.execute(
            _leases.update()
            .where(
                _leases.c.lane == lane,
                _leases.c.holder == previous.holder,
                _leases.c.acquired_at == previous.acquired_at,
            )
            .values(**values)
        )
    if taken.rowcount != 1:
        return False, None
    return True, (previous if previous.holder != holder.label else None)


def renew(
    engine: Engine,
    lane: str,
    holder: Holder | str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    *,
    clock: LeaseClock,
) -> bool:
    """Extend our lease; False when the row is gone or someone else took it over."""
    return renew_all(engine, [lane], _as_holder(holder), ttl_seconds, clock=clock) == []


def renew_all(
    engine: Engine,
    lanes: Iterable[str],
    holder: Holder,
    ttl_seconds: float,
    *,
    clock: LeaseClock,
) -> list[str]:
    """Heartbeat for many lanes in one statement; returns the lanes that were lost."""
    wanted = sorted(set(lanes))
    now = clock()
    with engine.begin() as conn:
        conn.execute(
            _leases.update()
            .where(_leases.c.lane.in_(wanted), _leases.c.holder == holder.label)
            .values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl_seconds))
        )
        still = conn.execute(
            sa.select(_leases.c.lane).where(
                _leases.c.lane.in_(wanted), _leases.c.holder == holder.label
            )
        )
        kept = {row[0] for row in still}
    return [lane for lane in wanted if lane not in kept]


def confirm(session: Session, lane: str, holder: Holder, now: datetime) -> None:
    """Inside the caller's transaction: prove we still hold the lane, and beat the heart
    (`now`: the runtime's clock). Raises LeaseLost (rolling the caller's writes back with it)
    when we do not: an action's intent is committed only together with this proof."""
    result = session.execute(
        _CONFIRM, {"lease_lane": lane, "lease_holder": holder.label, "beat_at": now}
    )
    if rows_changed(result) != 1:
        raise LeaseLost(lane)


def release(engine: Engine, lane: str, holder: Holder | str) -> bool:
    """Give the lane up; releasing a lease someone else now holds does nothing."""
    label = holder.label if isinstance(holder, Holder) else holder
    with engine.begin() as conn:
        released: CursorResult[tuple[()]] = conn.execute(
            _leases.delete().where(_leases.c.lane == lane, _leases.c.holder == label)
        )
        return released.rowcount == 1


def current(engine: Engine, lane: str) -> LaneLease | None:
    """The lease of record for a lane, expired or not."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(_leases).where(_leases.c.lane == lane)).mappings().first()
    return LaneLease.model_validate(dict(row)) if row else None


def all_leases(engine: Engine) -> list[LaneLease]:
    """Every lease row, live or left behind by a holder that is gone."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_leases).order_by(_leases.c.lane)).mappings().all()
    return [LaneLease.model_validate(dict(row)) for row in rows]


def _as_holder(holder: Holder | str) -> Holder:
    return holder if isinstance(holder, Holder) else Holder(label=holder)


@dataclass
class HeldLanes:
    """Lanes one worker holds, kept alive by a heartbeat thread until given back."""

    engine: Engine
    lanes: tuple[str, ...]
    holder: Holder
    ttl_seconds: float
    clock: LeaseClock
    taken_over: list[LaneLease] = field(default_factory=list)
    lost: str | None = None  # why the leases can no longer be trusted, once they cannot
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def renew(self) -> None:
        """Extend every lease; raises LeaseLost if any was taken over, so work stops."""
        with self._lock:  # a lane given back meanwhile is not renewed, nor counted lost
            lost = renew_all(
                self.engine, self.lanes, self.holder, self.ttl_seconds, clock=self.clock
            )
        if lost:
            self.lost = str(LeaseLost(lost[0]))
            raise LeaseLost(lost[0])

    def give_back(self, lane: str) -> None:
        """Release one lane whose work is done while the others go on (the heartbeat keeps
        only the rest)."""
        with self._lock:
            self.lanes = tuple(held for held in self.lanes if held != lane)
            release(self.engine, lane, self.holder)

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-heartbeat {self.holder.label}", daemon=True
        )
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        # A third of the TTL: two beats may be missed (a slow database) before others may
        # take the lanes over. Once a whole TTL passed without one, others may have: stop.
        # The wait between beats is real time; whether a TTL passed is the lease clock's call.
        last = self.clock()
        while not self._stop.wait(self.ttl_seconds / 3):
            try:
                self.renew()
                last = self.clock()
            except LeaseLost:
                log.error("%s; the work on these lanes stops", self.lost)
                return
            except SQLAlchemyError as exc:  # transient: the next beat tries again
                log.warning("lease heartbeat failed: %s", type(exc).__name__)
                if (self.clock() - last).total_seconds() > self.ttl_seconds:
                    self.lost = (
                        f"leases not renewed for {self.ttl_seconds:g}s; others may hold them"
                    )
                    return


def take_all(
    engine: Engine,
    lanes: Iterable[str],
    holder: Holder | str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    *,
    clock: LeaseClock,
) -> HeldLanes:
    """Take every lane, or none: LaneBusy after giving back what was taken.

    Lanes are taken in sorted order, so two workers wanting overlapping sets cannot each
    hold a part the other waits for.
    """
    who = _as_holder(holder)
    held = HeldLanes(engine, tuple(sorted(set(lanes))), who, ttl_seconds, clock)
    taken: list[str] = []
    try:
        for lane in held.lanes:
            ok, previous = take(engine, lane, who, ttl_seconds, clock=clock)
            if not ok:
                lease = current(engine, lane)
                raise LaneBusy(
                    lane, lease.holder if lease else None, lease.expires_at if lease else None
                )
            taken.append(lane)
            if previous is not None:
                held.taken_over.append(previous)
    except BaseException:
        _release_all(engine, taken, who)
        raise
    return held


def _release_all(engine: Engine, lanes: Iterable[str], holder: Holder) -> None:
    for lane in reversed(list(lanes)):
        release(engine, lane, holder)


@contextmanager
def hold(
    engine: Engine,
    lanes: Iterable[str],
    holder: Holder | str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    *,
    clock: LeaseClock,
) -> Iterator[HeldLanes]:
    """Hold every lane for the block, or none (see `take_all`), with a heartbeat running."""
    held = take_all(engine, lanes, holder, ttl_seconds, clock=clock)
    held.start_heartbeat()
    try:
        yield held
    finally:
        held.stop_heartbeat()
        _release_all(engine, held.lanes, held.holder)


@asynccontextmanager
async def holding(
    engine: Engine,
    lanes: Iterable[str],
    holder: Holder | str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    *,
    clock: LeaseClock,
) -> AsyncIterator[HeldLanes]:
    """`hold` for async code: the database calls run off the event loop."""
    held = await in_thread(take_all, engine, lanes, holder, ttl_seconds, clock=clock)
    held.start_heartbeat()
    try:
        yield held
    finally:
        with anyio.CancelScope(shield=True):  # give the lanes back even when cancelled
            await in_thread(held.stop_heartbeat)
            await in_thread(_release_all, engine, held.lanes, held.holder)
