"""Known-good states: what each lane ran when it was last converged and healthy.

One row per lane and desired generation, written when a pass or a plan finds the lane
converged at that generation with a passing health verdict (`core/known_good.remember`).
`running` is what the provider says runs (an image reference; an `@sha256:` digest when the
lane names one: Dokploy reports the image it was given, not a digest it resolved);
`verdict` is the health verdict that made it good; `restore` is the lane's kind's own record
of what to write back (`RestoringKind.restore`). Rows are never rewritten: a rollback or a
promotion reads them, and the audit trail says which one it used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.records.columns import JSONDocument, UTCDateTime
from reconciler.records.database import session_scope


class KnownGoodState(SQLModel, table=True):
    __tablename__ = "known_good_states"
    __table_args__ = (
        sa.UniqueConstraint("lane", "generation", name="uq_known_good_states_lane_generation"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lane: str = Field(max_length=200, index=True)
    generation: int
    running: str | None = Field(default=None, max_length=1024)
    verdict: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    restore: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    recorded_at: datetime = Field(sa_type=UTCDateTime)


@dataclass(frozen=True)
class GoodStateRow:
    """A known-good state as the engine passes it around (detached from its session)."""

    lane: str
    generation: int
    running: str | None
    verdict: dict[str, Any]
    restore: dict[str, Any]
    recorded_at: datetime


def _row(state: KnownGoodState) -> GoodStateRow:
    return GoodStateRow(
        lane=state.lane,
        generation=state.generation,
        running=state.running,
        verdict=dict(state.verdict),
        restore=dict(state.restore),
        recorded_at=state.recorded_at,
    )


def remember(engine: Engine, states: Sequence[GoodStateRow]) -> int:
    """Keep each of `states` unless its lane already has one at that generation (the first
    verdict that made a generation good stays the one on record): one read and one write
    for a whole pass. Returns how many were new. Two replicas finding the same lane good at
    once: the unique key keeps the first, and the other's batch is skipped (it is the same
    news, and the next pass tries again)."""
    if not states:
        return 0
    lanes = sorted({s.lane for s in states})
    query = select(KnownGoodState.lane, KnownGoodState.generation).where(
        col(KnownGoodState.lane).in_(lanes)
    )
    try:
        with session_scope(engine) as session:
            kept = {(lane, generation) for lane, generation in session.exec(query).all()}
            new = [s for s in states if (s.lane, s.generation) not in kept]
            session.add_all(
                KnownGoodState(
                    lane=s.lane,
                    generation=s.generation,
                    running=s.running,
                    verdict=s.verdict,
                    restore=s.restore,
                    recorded_at=s.recorded_at,
                )
                for s in new
            )
    except sa.exc.IntegrityError:
        return 0
    return len(new)


def _at(session: Session, lane: str, generation: int) -> KnownGoodState | None:
    query = select(KnownGoodState).where(
        KnownGoodState.lane == lane, KnownGoodState.generation == generation
    )
    return session.exec(query).first()


def at_generation(engine: Engine, lane: str, generation: int) -> GoodStateRow | None:
    with session_scope(engine) as session:
        found = _at(session, lane, generation)
        return _row(found) if found is not None else None


def history(engine: Engine, lane: str) -> list[GoodStateRow]:
    """The lane's known-good states, newest generation first."""
    query = (
        select(KnownGoodState)
        .where(KnownGoodState.lane == lane)
        .order_by(col(KnownGoodState.generation).desc())
    )
    with session_scope(engine) as session:
        return [_row(state) for state in session.exec(query).all()]
