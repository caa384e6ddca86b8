"""Lane status: Ready, Reconciling and Stalled conditions, with reason, message and generation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, select

from reconciler.records.columns import JSONDocument, UTCDateTime, utcnow
from reconciler.records.database import session_scope


class LaneStatusRow(SQLModel, table=True):
    __tablename__ = "lane_status"

    lane: str = Field(primary_key=True, max_length=200)
    conditions: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    observed_generation: int | None = None
    last_applied_plan: str | None = Field(default=None, max_length=40)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


CONDITION_TYPES = ("Ready", "Reconciling", "Stalled")


@dataclass(frozen=True)
class LaneCondition:
    ready: bool
    reconciling: bool
    stalled: bool
    reason: str
    message: str


def converged(message: str = "observed state matches desired state") -> LaneCondition:
    return LaneCondition(True, False, False, "Converged", message)


def pending(message: str) -> LaneCondition:
    return LaneCondition(False, False, False, "ChangesPending", message)


def reconciling(message: str) -> LaneCondition:
    return LaneCondition(False, True, False, "Applying", message)


def stalled(reason: str, message: str) -> LaneCondition:
    return LaneCondition(False, False, True, reason, message)


def record(
    engine: Engine,
    lane: str,
    condition: LaneCondition,
    *,
    observed_generation: int | None = None,
    last_applied_plan: str | None = None,
) -> None:
    now = utcnow().isoformat()
    with session_scope(engine) as session:
        row = session.get(LaneStatusRow, lane) or LaneStatusRow(lane=lane)
        previous = {c["type"]: c for c in row.conditions}
        flags = {
            "Ready": condition.ready,
            "Reconciling": condition.reconciling,
            "Stalled": condition.stalled,
        }
        conditions: list[dict[str, Any]] = []
        for kind in CONDITION_TYPES:
            status = "True" if flags[kind] else "False"
            before = previous.get(kind)
            moved = before is None or before["status"] != status
            conditions.append(
                {
                    "type": kind,
                    "status": status,
                    "reason": condition.reason,
                    "message": condition.message,
                    "lastTransitionTime": now if moved else before["lastTransitionTime"],  # type: ignore[index]
                }
            )
        row.conditions = conditions
        if observed_generation is not None:
            row.observed_generation = observed_generation
        if last_applied_plan is not None:
            row.last_applied_plan = last_applied_plan
        row.updated_at = utcnow()
        session.add(row)


def forget(engine: Engine, lane: str) -> None:
    """A lane that is no longer desired and whose objects are gone has no status to show."""
    with session_scope(engine) as session:
        row = session.get(LaneStatusRow, lane)
        if row is not None:
            session.delete(row)


def all_statuses(engine: Engine) -> list[LaneStatusRow]:
    with session_scope(engine) as session:
        return list(session.exec(select(LaneStatusRow).order_by(LaneStatusRow.lane)).all())
