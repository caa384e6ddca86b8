"""Lane status: Ready, Reconciling and Stalled conditions, with reason, message and generation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.records.columns import JSONDocument, UTCDateTime
from reconciler.records.database import session_scope, table_of


class LaneStatusRow(SQLModel, table=True):
    __tablename__ = "lane_status"

    lane: str = Field(primary_key=True, max_length=200)
    conditions: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    observed_generation: int | None = None
    last_applied_plan: str | None = Field(default=None, max_length=40)
    # A lane that answered "not yet" is tried again no earlier than this.
    retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)  # the writer's `now`, never a default


CONDITION_TYPES = ("Ready", "Reconciling", "Stalled")


@dataclass(frozen=True)
class LaneCondition:
    ready: bool
    reconciling: bool
    stalled: bool
    reason: Reason | str  # or a blocker's reason (the engine's or its kind's)
    message: str


class Reason(StrEnum):
    """Why a lane is in the state its conditions say (blocker types are reasons too)."""

    converged = "Converged"
    changes_pending = "ChangesPending"
    applying = "Applying"
    waiting = "Waiting"
    apply_failed = "ApplyFailed"
    apply_incomplete = "ApplyIncomplete"
    interrupted = "Interrupted"  # the worker applying to the lane is gone
    # Deployed, but a health check fails: after a deploy (Stalled too, backing off until its
    # next check), or when the health watch checks a converged lane again.
    degraded = "Degraded"
    as_expected = "AsExpected"  # a condition that is False and has nothing to say


def converged(message: str = "observed state matches desired state") -> LaneCondition:
    return LaneCondition(True, False, False, Reason.converged, message)


def pending(message: str) -> LaneCondition:
    return LaneCondition(False, False, False, Reason.changes_pending, message)


def reconciling(message: str) -> LaneCondition:
    return LaneCondition(False, True, False, Reason.applying, message)


def stalled(reason: Reason | str, message: str) -> LaneCondition:
    return LaneCondition(False, False, True, reason, message)


def degraded(message: str) -> LaneCondition:
    """Converged, but the health watch's last check failed: not Ready, nothing to apply."""
    return LaneCondition(False, False, False, Reason.degraded, message)


def waiting(message: str) -> LaneCondition:
    """Not failed: the lane's kind said "not yet", and it will be tried again."""
    return LaneCondition(False, True, False, Reason.waiting, message)


def _conditions(
    condition: LaneCondition, previous: dict[str, dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Ready always says why; Reconciling and Stalled carry the reason only when True
    (Flux's convention: a condition that is False has nothing to explain)."""
    flags = {"Ready": condition.ready, "Reconciling": condition.reconciling}
    flags["Stalled"] = condition.stalled
    conditions: list[dict[str, Any]] = []
    for kind in CONDITION_TYPES:
        speaks = kind == "Ready" or flags[kind]
        before = previous.get(kind)
        status = "True" if flags[kind] else "False"
        moved = before is None or before["status"] != status
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": str(condition.reason if speaks else Reason.as_expected),
                "message": condition.message if speaks else "",
                "lastTransitionTime": now
                if moved or before is None
                else before["lastTransitionTime"],
            }
        )
    return conditions


def conditions_of(condition: LaneCondition, now: datetime) -> list[dict[str, Any]]:
    """The conditions a lane with no history would show for `condition` at `now`."""
    return _conditions(condition, {}, now.isoformat())


@dataclass(frozen=True)
class StatusUpdate:
    """What one lane's status becomes; `None` fields keep what the row had."""

    lane: str
    condition: LaneCondition
    observed_generation: int | None = None
    last_applied_plan: str | None = None
    retry_at: datetime | None = None


def record(
    engine: Engine,
    lane: str,
    condition: LaneCondition,
    *,
    observed_generation: int | None = None,
    last_applied_plan: str | None = None,
    retry_at: datetime | None = None,
    now: datetime,
) -> None:
    update = StatusUpdate(lane, condition, observed_generation, last_applied_plan, retry_at)
    record_all(engine, [update], now=now)


def record_all(
    engine: Engine, updates: Sequence[StatusUpdate], forget: Sequence[str] = (), *, now: datetime
) -> int:
    """Write many lanes' status in one transaction, touching only rows that change (a quiet
    fleet's pass writes nothing), as of `now` (the runtime's clock: a condition's transition
    time). Lanes in `forget` lose their row. Returns rows written."""
    if not updates and not forget:
        return 0
    wanted = [u.lane for u in updates] + list(forget)
    table = table_of(LaneStatusRow)
    with session_scope(engine) as session:
        # Plain rows, not ORM objects: building a SQLModel row costs more than writing it.
        rows = {
            row["lane"]: _StatusValues(**row)
            for row in session.execute(sa.select(table).where(table.c.lane.in_(wanted))).mappings()
        }
        changed = []
        for update in updates:
            row = rows.get(update.lane) or _StatusValues(update.lane)
            if _apply(row, update, now):
                changed.append(row)
        _upsert(session, changed)
        gone = [lane for lane in forget if lane in rows]
        if gone:
            session.execute(sa.delete(table).where(table.c.lane.in_(gone)))
    return len(changed) + len(gone)


@dataclass
class _StatusValues:
    """A status row's columns, as `record_all` reads, moves and writes them."""

    lane: str
    conditions: list[dict[str, Any]] = field(default_factory=list)
    observed_generation: int | None = None
    last_applied_plan: str | None = None
    retry_at: datetime | None = None
    updated_at: datetime | None = None


_UPSERTED = ("conditions", "observed_generation", "last_applied_plan", "retry_at", "updated_at")


def _upsert(session: Session, rows: Sequence[_StatusValues]) -> None:
    """Write `rows` with one `INSERT ... ON CONFLICT (lane) DO UPDATE` (SQLite and
    PostgreSQL both have it): a 10,000-lane plan's status was 23 % of storing it, built
    and flushed by the ORM one row at a time."""
    if not rows:
        return
    table = table_of(LaneStatusRow)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.lane], set_={name: insert.excluded[name] for name in _UPSERTED}
    )
    # Shallow: `dataclasses.asdict` deep-copies every condition (a third of a 10,000-lane
    # plan's store).
    values = [
        {"lane": row.lane, **{name: getattr(row, name) for name in _UPSERTED}} for row in rows
    ]
    session.execute(statement, values)


def _apply(row: _StatusValues, update: StatusUpdate, now: datetime) -> bool:
    """Move the row to `update`; False when nothing would change."""
    previous = {c["type"]: c for c in row.conditions}
    conditions = _conditions(update.condition, previous, now.isoformat())
    generation = (
        row.observed_generation
        if update.observed_generation is None
        else update.observed_generation
    )
    applied = (
        row.last_applied_plan if update.last_applied_plan is None else update.last_applied_plan
    )
    after = (conditions, generation, applied, update.retry_at)
    before = (row.conditions, row.observed_generation, row.last_applied_plan, row.retry_at)
    if after == before and row.updated_at is not None and row.conditions:
        return False
    row.conditions, row.observed_generation = conditions, generation
    row.last_applied_plan, row.retry_at, row.updated_at = applied, update.retry_at, now
    return True


def forget(engine: Engine, lane: str) -> None:
    """A lane that is no longer desired and whose objects are gone has no status to show."""
    with session_scope(engine) as session:
        row = session.get(LaneStatusRow, lane)
        if row is not None:
            session.delete(row)


def drop(session: Session, lane: str) -> None:
    """Inside the caller's transaction: the lane has no status to show any more."""
    row = session.get(LaneStatusRow, lane)
    if row is not None:
        session.delete(row)


def retry_times(engine: Engine) -> dict[str, datetime]:
    """Lanes waiting to be tried again, and when."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(LaneStatusRow).where(col(LaneStatusRow.retry_at).is_not(None))
        ).all()
        return {r.lane: r.retry_at for r in rows if r.retry_at is not None}


def lanes_with_status(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.exec(select(LaneStatusRow.lane)).all())


def all_statuses(engine: Engine) -> list[LaneStatusRow]:
    with session_scope(engine) as session:
        return list(session.exec(select(LaneStatusRow).order_by(LaneStatusRow.lane)).all())
