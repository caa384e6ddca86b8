"""Each watched lane's latest health verdict: what the last check said, when, and since when
the lane has been failing (`core/health_watch.py` writes it; rollback and promotion read it).

One row per lane. `basis` names what the verdict is about (the product kind: the hash of the
configuration the lane runs): a verdict about another basis is stale and never shown.
`failing_since` is when the current run of failures began (None while the lane passes), and
`passed_at` the last time a check on this basis passed: what made the lane good.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, col, select

from reconciler.records.columns import UTCDateTime
from reconciler.records.database import session_scope


class LaneHealth(SQLModel, table=True):
    __tablename__ = "lane_health"

    lane: str = Field(primary_key=True, max_length=200)
    basis: str = Field(max_length=200)
    ok: bool
    check_url: str = Field(max_length=2000)
    status_code: int | None = None
    reason: str = Field(max_length=2000)
    checked_at: datetime = Field(sa_type=UTCDateTime)
    failures: int = 0  # consecutive failed checks on this basis
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    passed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Checked:
    """One verdict to record."""

    lane: str
    basis: str
    ok: bool
    check_url: str
    status_code: int | None
    reason: str


@dataclass(frozen=True)
class Transition:
    """A lane whose verdict changed: `became` is "degraded" or "recovered"."""

    lane: str
    became: str
    row: LaneHealth


def latest(engine: Engine, lanes: Collection[str]) -> dict[str, LaneHealth]:
    """The recorded verdicts of `lanes` (whatever their basis)."""
    if not lanes:
        return {}
    with session_scope(engine) as session:
        query = select(LaneHealth).where(col(LaneHealth.lane).in_(list(lanes)))
        return {row.lane: row for row in session.exec(query)}


def record_checks(engine: Engine, checked: Collection[Checked], now: datetime) -> list[Transition]:
    """Record `checked` in one transaction; the lanes that turned degraded or recovered (a
    first verdict that fails is a turn; one that passes is not)."""
    turned: list[Transition] = []
    with session_scope(engine) as session:
        rows = {
            row.lane: row
            for row in session.exec(
                select(LaneHealth).where(col(LaneHealth.lane).in_([c.lane for c in checked]))
            )
        }
        for check in checked:
            row = rows.get(check.lane)
            was_failing = row is not None and row.basis == check.basis and not row.ok
            row = _on_basis(row, check, now)
            _move(row, check, now)
            session.add(row)
            if not check.ok and not was_failing:
                turned.append(Transition(check.lane, "degraded", row))
            elif check.ok and was_failing:
                turned.append(Transition(check.lane, "recovered", row))
        session.flush()
        for transition in turned:
            session.refresh(transition.row)
            session.expunge(transition.row)
    return turned


def _on_basis(row: LaneHealth | None, check: Checked, now: datetime) -> LaneHealth:
    """The lane's row for the check's basis: a new one, or the old row started afresh when
    another configuration runs now (one row per lane, its key)."""
    if row is None:
        return LaneHealth(
            lane=check.lane, basis=check.basis, ok=True, check_url="", reason="", checked_at=now
        )
    if row.basis != check.basis:
        row.basis, row.failures, row.failing_since, row.passed_at = check.basis, 0, None, None
    return row


def _move(row: LaneHealth, check: Checked, now: datetime) -> None:
    row.ok, row.check_url, row.reason = check.ok, check.check_url[:2000], check.reason[:2000]
    row.status_code, row.checked_at = check.status_code, now
    if check.ok:
        row.failures, row.failing_since, row.passed_at = 0, None, now
    else:
        row.failing_since = row.failing_since or now
        row.failures += 1


def forget(engine: Engine, lanes: Collection[str]) -> None:
    """Lanes no longer watched keep no verdict to show."""
    if not lanes:
        return
    with session_scope(engine) as session:
        for row in session.exec(select(LaneHealth).where(col(LaneHealth.lane).in_(list(lanes)))):
            session.delete(row)
