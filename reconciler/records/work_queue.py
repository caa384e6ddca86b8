"""The lane work queue: which lanes want reconciling, how urgently, and who is on them.

One row per lane, so a lane queued twice runs once. Requests rank by priority (a workflow's
request before a webhook's before a scheduled pass) and then by when they became due. A
worker claims rows for a while (`claimed_until`), renews the claim while it works, and
finishes it: done, retry later (backoff), or given up (a permanent failure). A claim whose
worker died lapses and another worker takes the lane; the lane's lease still decides who
may change it, so a lapsed claim can never let two workers mutate one lane at once. A claim
records the host and process that made it (as a lease does), so on the same host a claim
whose process is gone is free at once: a restarted loop does not wait for its dead
predecessor's claims to lapse.

`seq` counts requests: a request that arrives while a worker holds the lane bumps it, and
finishing keeps the row (due at once) instead of deleting it, because the worker may have
observed before the change the request is about.

On PostgreSQL `claim` locks rows FOR UPDATE SKIP LOCKED, so replicas claiming at once take
different lanes without waiting on each other; SQLite has one writer at a time and takes
its write lock first (`session_scope(write_lock=True)`).

A request (workflow or webhook) is claimed in a batch of requests only, never beside
scheduled lanes, so its survey is its own. Once the transaction that queued it commits, the
loops of this process that listen (`listen_for_requests`) hear of it at once; other
processes (replicas) find it at their next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.records.columns import UTCDateTime
from reconciler.records.database import table_of
from reconciler.records.leases import Holder, process_gone, this_host


class WorkPriority(IntEnum):
    """Lower runs first."""

    workflow = 0
    webhook = 1
    scheduled = 2


class LaneWork(SQLModel, table=True):
    __tablename__ = "lane_work"

    lane: str = Field(primary_key=True, max_length=200)
    priority: int = Field(index=True)
    reason: str = Field(max_length=200)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    queued_at: datetime = Field(sa_type=UTCDateTime)
    seq: int = 1
    # Consecutive temporary failures, for backoff; reset by a success or a permanent failure.
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_seq: int | None = None
    # The claiming process (host, pid and its start time, against a reused pid).
    claimed_host: str | None = Field(default=None, max_length=200)
    claimed_pid: int | None = None
    claimed_pid_started: int | None = Field(default=None, sa_type=sa.BigInteger)


_work = table_of(LaneWork)
log = logging.getLogger("setpoint.loop")

RequestBell = Callable[[], None]  # called in the committing thread; must not block
# The bells of the loops of this process, by the database they claim from.
_request_bells: dict[sa.Engine, list[RequestBell]] = {}


def listen_for_requests(database: sa.Engine, bell: RequestBell) -> Callable[[], None]:
    """Call `bell` whenever a transaction that queued a request (workflow or webhook) for
    `database` commits in this process. Returns what stops it."""
    bells = _request_bells.setdefault(database, [])
    bells.append(bell)

    def stop() -> None:
        bells.remove(bell)
        if not bells:
            _request_bells.pop(database, None)

    return stop


def _ring_after_commit(session: Session) -> None:
    bind = session.get_bind()
    database = bind.engine if isinstance(bind, sa.Connection) else bind
    if database not in _request_bells:
        return

    def ring(_: Session) -> None:
        for bell in list(_request_bells.get(database, ())):
            try:
                bell()
            except Exception as exc:  # the request is queued; the loop's poll finds it
                log.warning("waking the loop for a request failed: %s", type(exc).__name__)

    sa.event.listen(session, "after_commit", ring, once=True)


@dataclass(frozen=True)
class ClaimedWork:
    lane: str
    priority: WorkPriority
    reason: str
    seq: int
    attempts: int


def enqueue(
    session: Session, lanes: Iterable[str], priority: WorkPriority, reason: str, now: datetime
) -> None:
    """Queue `lanes`, inside the caller's transaction (so a webhook delivery or an operation
    is recorded together with the work it asks for).

    A lane already queued keeps one row: its priority rises to the higher of the two, and a
    request (workflow or webhook) makes it due now even while it backs off; a scheduled pass
    never cuts a backoff short."""
    rows = [
        {"lane": lane, "priority": int(priority), "reason": reason[:200], "due_at": now}
        | {"queued_at": now, "seq": 1, "attempts": 0}
        for lane in dict.fromkeys(lanes)
    ]
    if not rows:
        return
    # One statement with the rows as its parameters (SQLAlchemy sends them as multi-row
    # VALUES in batches), rather than the rows compiled into it: a statement of its own per
    # fleet size, compiled afresh with a bound parameter per column per lane (a 1,000-lane
    # pass's upsert cost more CPU than the rest of its bookkeeping).
    insert = _dialect_insert(session)
    excluded = insert.excluded
    higher = excluded.priority < _work.c.priority
    updates: dict[str, object] = {
        "priority": sa.case((higher, excluded.priority), else_=_work.c.priority),
        "reason": sa.case((higher, excluded.reason), else_=_work.c.reason),
        "seq": _work.c.seq + 1,
    }
    if priority is not WorkPriority.scheduled:
        earlier = excluded.due_at < _work.c.due_at
        updates["due_at"] = sa.case((earlier, excluded.due_at), else_=_work.c.due_at)
    written = session.execute(
        insert.on_conflict_do_update(index_elements=["lane"], set_=updates).returning(
            _work.c.priority, _work.c.claimed_by
        ),
        rows,
    )
    # A scheduled pass's upsert holds the rows it writes until it commits, and the request
    # worker's claim skips locked rows (PostgreSQL): a request it heard meanwhile was
    # passed over, so a pass that leaves a request unclaimed rings once it commits too.
    waiting = any(p < WorkPriority.scheduled and by is None for p, by in written)
    if priority is not WorkPriority.scheduled or waiting:
        _ring_after_commit(session)


def _dialect_insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(_work)
    return sqlite.insert(_work)


def claim(
    session: Session,
    worker: str,
    now: datetime,
    *,
    limit: int,
    hold_seconds: float,
    exclude: Collection[str] = (),
    holder: Holder | None = None,
    requests_only: bool = False,
) -> list[ClaimedWork]:
    """Take up to `limit` due lanes nobody holds (or whose holder's claim lapsed, or whose
    holder's process on this host is gone), most urgent first, but none of `exclude` (and,
    `requests_only`, no scheduled lane). When a request is due, only requests are taken: a
    request never waits for scheduled lanes' survey. `holder`: the claiming process, this
    one unless a test says otherwise. Call in `session_scope(engine, write_lock=True)`."""
    holder = holder or Holder(label=worker)
    free = sa.or_(_work.c.claimed_until.is_(None), _work.c.claimed_until < now)
    orphaned = _orphaned(session, now, alive=holder)
    if orphaned:
        free = sa.or_(free, _work.c.lane.in_(orphaned))
    wanted = sa.and_(_work.c.due_at <= now, free)
    if requests_only:
        wanted = sa.and_(wanted, _work.c.priority < int(WorkPriority.scheduled))
    if exclude:
        wanted = sa.and_(wanted, _work.c.lane.not_in(list(exclude)))
    rows = session.execute(
        sa.select(_work.c.lane, _work.c.priority, _work.c.reason, _work.c.seq, _work.c.attempts)
        .where(wanted)
        .order_by(_work.c.priority, _work.c.due_at, _work.c.lane)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows and rows[0].priority < WorkPriority.scheduled:
        rows = [row for row in rows if row.priority < WorkPriority.scheduled]
    if not rows:
        return []
    session.execute(
        _work.update()
        .where(_work.c.lane.in_([row.lane for row in rows]))
        .values(
            claimed_by=worker,
            claimed_until=now + timedelta(seconds=hold_seconds),
            claimed_seq=_work.c.seq,
            claimed_host=holder.host,
            claimed_pid=holder.pid,
            claimed_pid_started=holder.pid_started,
        )
    )
    return [
        ClaimedWork(row.lane, WorkPriority(row.priority), row.reason, row.seq, row.attempts)
        for row in rows
    ]


def extend_claims(
    session: Session, worker: str, lanes: Sequence[str], until: datetime
) -> list[str]:
    """Renew our claims; returns the lanes whose claim we no longer hold."""
    if not lanes:
        return []
    session.execute(
        _work.update()
        .where(_work.c.lane.in_(lanes), _work.c.claimed_by == worker)
        .values(claimed_until=until)
    )
    held = session.execute(
        sa.select(_work.c.lane).where(_work.c.lane.in_(lanes), _work.c.claimed_by == worker)
    )
    kept = {row[0] for row in held}
    return [lane for lane in lanes if lane not in kept]


def finish_done(session: Session, worker: str, lane: str) -> list[str]:
    """The lane was worked. Its row goes, unless a request came in meanwhile. Returns the
    lane if its row stays queued."""
    mine = sa.and_(_work.c.lane == lane, _work.c.claimed_by == worker)
    session.execute(_work.delete().where(mine, _work.c.seq == _work.c.claimed_seq))
    return _release(session, mine, attempts=0, last_error=None)


def finish_done_all(session: Session, worker: str, lanes: Sequence[str]) -> list[str]:
    """`finish_done` for many lanes in two statements (a quiet pass finishes whole batches).
    Returns the lanes whose rows stay queued."""
    if not lanes:
        return []
    mine = sa.and_(_work.c.lane.in_(list(lanes)), _work.c.claimed_by == worker)
    session.execute(_work.delete().where(mine, _work.c.seq == _work.c.claimed_seq))
    return _release(session, mine, attempts=0, last_error=None)


def finish_retry(
    session: Session,
    worker: str,
    lane: str,
    *,
    retry_at: datetime,
    error: str,
    count_attempt: bool = True,
) -> None:
    """A temporary failure: try the lane again at `retry_at` (the caller's backoff).
    `count_attempt` False: a "not yet" the lane's kind asked for, not a failure, so the
    backoff does not grow. A request that came in while the lane was worked (`seq` moved)
    keeps it due at once, as `finish_done` keeps it: the worker may not have seen it."""
    mine = sa.and_(_work.c.lane == lane, _work.c.claimed_by == worker)
    attempts = _work.c.attempts + 1 if count_attempt else _work.c.attempts
    unasked = _work.c.seq == _work.c.claimed_seq
    due_at = sa.case((unasked, retry_at), else_=_work.c.due_at)
    _release(session, mine, attempts=attempts, last_error=error[:500], due_at=due_at)


def finish_given_up(session: Session, worker: str, lane: str) -> list[str]:
    """A permanent failure: not retried. The reason belongs on the lane's status; the next
    request or scheduled pass queues the lane afresh. Returns the lane if its row stays
    queued (a request came in meanwhile)."""
    return finish_done(session, worker, lane)


def release(session: Session, worker: str, lanes: Sequence[str]) -> None:
    """Give claims back unworked (a worker shutting down): the lanes stay queued as they
    were, due now for whoever claims next."""
    if lanes:
        mine = sa.and_(_work.c.lane.in_(list(lanes)), _work.c.claimed_by == worker)
        _release(session, mine)


def release_lapsed(session: Session, now: datetime) -> list[str]:
    """Clear claims that lapsed (their worker died or stalled) or whose process on this
    host is gone; returns those lanes. They were claimable already; this makes `queued`
    say so."""
    lapsed = sa.and_(_work.c.claimed_by.is_not(None), _work.c.claimed_until < now)
    orphaned = _orphaned(session, now)
    if orphaned:
        lapsed = sa.or_(lapsed, _work.c.lane.in_(orphaned))
    lanes = [row[0] for row in session.execute(sa.select(_work.c.lane).where(lapsed))]
    if lanes:
        _release(session, sa.and_(_work.c.lane.in_(lanes), lapsed))
    return lanes


def claimed_lanes(session: Session, now: datetime) -> set[str]:
    """Lanes some worker holds a live claim on (its process, on this host, still runs)."""
    live = sa.and_(_work.c.claimed_by.is_not(None), _work.c.claimed_until >= now)
    lanes = {row[0] for row in session.execute(sa.select(_work.c.lane).where(live))}
    return lanes - set(_orphaned(session, now))


def _orphaned(session: Session, now: datetime, *, alive: Holder | None = None) -> list[str]:
    """Lanes claimed, and not lapsed, by a process of this host that is gone. `alive`: the
    asking process, whose own claims (a busy loop's lanes in flight, hundreds of rows) are
    not read: it is not gone."""
    here = sa.and_(
        _work.c.claimed_until >= now,
        _work.c.claimed_host == this_host(),
        _work.c.claimed_pid.is_not(None),
    )
    if alive is not None and alive.pid_started is not None:
        mine = sa.and_(
            _work.c.claimed_pid == alive.pid, _work.c.claimed_pid_started == alive.pid_started
        )
        here = sa.and_(here, sa.not_(mine))
    rows = session.execute(
        sa.select(_work.c.lane, _work.c.claimed_pid, _work.c.claimed_pid_started).where(here)
    ).all()
    gone: dict[tuple[int, int | None], bool] = {}
    orphaned = []
    for lane, pid, started in rows:
        if (pid, started) not in gone:
            gone[(pid, started)] = process_gone(this_host(), pid, started)
        if gone[(pid, started)]:
            orphaned.append(lane)
    return orphaned


def _release(session: Session, mine: sa.ColumnElement[bool], **values: object) -> list[str]:
    """Give claims back; returns the lanes given back (their rows stay queued). A request
    that came for a lane while it was claimed (its row kept at a request's priority) rings
    this process's loops once committed: the request worker that heard it first found the
    lane claimed, and would otherwise wait out a poll."""
    kept = session.execute(
        _work.update()
        .where(mine)
        .values(
            claimed_by=None,
            claimed_until=None,
            claimed_seq=None,
            claimed_host=None,
            claimed_pid=None,
            claimed_pid_started=None,
            **values,
        )
        .returning(_work.c.lane, _work.c.priority)
    ).all()
    if any(priority < WorkPriority.scheduled for _, priority in kept):
        _ring_after_commit(session)
    return [lane for lane, _ in kept]


def queued(session: Session) -> list[LaneWork]:
    """Every queued lane, most urgent first (for status, the API and metrics)."""
    rows = session.exec(
        select(LaneWork).order_by(col(LaneWork.priority), col(LaneWork.due_at), col(LaneWork.lane))
    )
    return list(rows)
