"""Plans in the database: save, load, and move through their statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, col, select

from reconciler.core.plan_formats import plan_of_body
from reconciler.core.plans import Plan
from reconciler.errors import PlanNotFound
from reconciler.records.columns import EncodedJSON, EnumText, JSONDocument, UTCDateTime
from reconciler.records.database import rows_changed, session_scope


class PlanStatus(StrEnum):
    """pending -> applying -> applied | failed | waiting; or stale / superseded / interrupted."""

    pending = "pending"
    applying = "applying"
    applied = "applied"
    failed = "failed"
    waiting = "waiting"  # applied as far as it could; a lane waits to be tried again
    stale = "stale"
    superseded = "superseded"
    interrupted = "interrupted"  # its worker died mid-apply; the next plan takes over

    @property
    def final(self) -> bool:
        """Nothing will happen to a plan in this status any more."""
        return self not in (PlanStatus.pending, PlanStatus.applying)


def save(engine: Engine, plan: Plan) -> list[str]:
    """Store the plan; earlier pending plans by the same creator for the same lanes are
    superseded (a scheduler re-planning every few minutes leaves one live plan per lane,
    and never retires a plan an operator is still reviewing). Returns the superseded ids."""
    with session_scope(engine) as session:
        # Only the columns that decide it: a pending plan's body may be large.
        pending = session.execute(
            sa.select(col(StoredPlan.id), col(StoredPlan.lanes)).where(
                col(StoredPlan.status) == PlanStatus.pending,
                col(StoredPlan.created_by) == plan.created_by,
            )
        ).all()
        superseded = [row.id for row in pending if sorted(row.lanes) == sorted(plan.lanes)]
        if superseded:
            session.execute(
                sa.update(StoredPlan)
                .where(col(StoredPlan.id).in_(superseded))
                .values(status=PlanStatus.superseded.value)
            )
        session.execute(
            sa.insert(StoredPlan).values(
                id=plan.plan_id,
                digest=plan.digest,
                desired_revision=plan.desired_revision,
                created_by=plan.created_by,
                created_at=plan.created_at,
                expires_at=plan.expires_at,
                status=PlanStatus.pending,
                lanes=plan.lanes,
                # The text the digest was taken over, not encoded again.
                body=EncodedJSON(plan.stored_body_text()),
            )
        )
    return superseded


def pending_by_lanes(
    engine: Engine, *, created_by: str, now: datetime
) -> dict[tuple[str, ...], tuple[str, str]]:
    """(plan id, digest) of each unexpired pending plan by `created_by`, by its lanes."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(StoredPlan).where(
                StoredPlan.status == PlanStatus.pending,
                StoredPlan.created_by == created_by,
                StoredPlan.expires_at > now,
            )
        ).all()
        return {tuple(sorted(row.lanes)): (row.id, row.digest) for row in rows}


def load(engine: Engine, plan_id: str) -> tuple[Plan, PlanStatus]:
    """The plan and its status."""
    with session_scope(engine) as session:
        row = session.get(StoredPlan, plan_id)
        if row is None:
            raise PlanNotFound(plan_id)
        try:
            return plan_of_body(row.body), row.status
        except ValidationError:
            # A body no format describes (its upgrade superseded it): not a plan to apply.
            raise PlanNotFound(plan_id) from None


@dataclass(frozen=True)
class PlanSummary:
    """One stored plan as `plans list` shows it (read from its columns, not its body, so a
    plan an older Setpoint wrote is still listed)."""

    plan_id: str
    status: str  # the stored PlanStatus; the review pages put what they show here (expired)
    created_by: str
    created_at: datetime
    expires_at: datetime
    lanes: list[str]
    actions: int
    blockers: int
    digest: str
    # The lanes it changes or blocks (a whole-fleet plan covers every lane, acts on few).
    acting_lanes: list[str] = field(default_factory=list)


def summaries(
    engine: Engine,
    *,
    status: PlanStatus | None = None,
    lane: str | None = None,
    created_by: str | None = None,
    limit: int = 20,
) -> list[PlanSummary]:
    """The newest plans first, optionally only those in `status`, covering `lane` or
    computed by `created_by`."""
    query = select(StoredPlan).order_by(col(StoredPlan.created_at).desc())
    if status is not None:
        query = query.where(StoredPlan.status == status)
    if created_by is not None:
        query = query.where(StoredPlan.created_by == created_by)
    found: list[PlanSummary] = []
    with session_scope(engine) as session:
        for row in session.exec(query):
            if lane is not None and lane not in row.lanes:
                continue
            found.append(_summary(row))
            if len(found) >= limit:
                break
    return found


def _summary(row: StoredPlan) -> PlanSummary:
    body = row.body or {}
    return PlanSummary(
        plan_id=row.id,
        status=row.status,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        lanes=list(row.lanes),
        actions=len(body.get("actions", [])),
        blockers=len(body.get("blockers", [])),
        digest=row.digest,
        acting_lanes=_acting_lanes(body),
    )


def _acting_lanes(body: dict[str, Any]) -> list[str]:
    items = [*body.get("actions", []), *body.get("blockers", [])]
    return sorted({str(item["lane"]) for item in items if item.get("lane")})


def set_status(engine: Engine, plan_id: str, status: PlanStatus) -> None:
    with session_scope(engine) as session:
        row = session.get(StoredPlan, plan_id)
        if row is not None:
            row.status = status
            session.add(row)


def move_status(engine: Engine, plan_id: str, from_: PlanStatus, to: PlanStatus) -> bool:
    """Move the plan from one status to another, atomically; False if it was not in `from_`."""
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(StoredPlan)
            .where(col(StoredPlan.id) == plan_id, col(StoredPlan.status) == from_)
            .values(status=to)
        )
        return rows_changed(result) > 0


def with_status(engine: Engine, status: PlanStatus) -> list[tuple[str, list[str]]]:
    """(plan id, lanes) of every plan in `status`."""
    with session_scope(engine) as session:
        rows = session.exec(select(StoredPlan).where(StoredPlan.status == status)).all()
        return [(row.id, list(row.lanes)) for row in rows]


def prune(engine: Engine, *, older_than: datetime) -> int:
    """Delete finished plans created before `older_than`; returns how many. Pending and
    applying plans stay whatever their age, and the audit trail keeps every record."""
    finished = [s.value for s in PlanStatus if s.final]
    with session_scope(engine) as session:
        result = session.execute(
            sa.delete(StoredPlan).where(
                col(StoredPlan.created_at) < older_than,
                col(StoredPlan.status).in_(finished),
            )
        )
        return rows_changed(result)


def claim_for_apply(engine: Engine, plan_id: str) -> bool:
    """Move pending -> applying atomically; False if someone else got there first."""
    return move_status(engine, plan_id, PlanStatus.pending, PlanStatus.applying)


class StoredPlan(SQLModel, table=True):
    __tablename__ = "plans"

    id: str = Field(primary_key=True, max_length=40)
    digest: str = Field(max_length=64)
    desired_revision: str = Field(max_length=64)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)  # the plan's own (the runtime's clock)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    status: PlanStatus = Field(
        default=PlanStatus.pending, sa_type=EnumText(PlanStatus, 20), index=True
    )
    lanes: list[str] = Field(sa_type=JSONDocument)
    body: dict[str, Any] = Field(sa_type=JSONDocument)
