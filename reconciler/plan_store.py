"""Plans in the database: save, load, and move through their statuses."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select

from reconciler.plan import Plan
from reconciler.store.database import session_scope
from reconciler.store.plans import StoredPlan


class PlanNotFound(LookupError):
    pass


def save(engine: Engine, plan: Plan) -> list[str]:
    """Store the plan; earlier pending plans by the same creator for the same lanes are
    superseded (a scheduler re-planning every few minutes leaves one live plan per lane,
    and never retires a plan an operator is still reviewing). Returns the superseded ids."""
    with session_scope(engine) as session:
        pending = session.exec(select(StoredPlan).where(StoredPlan.status == "pending")).all()
        superseded = []
        for row in pending:
            if row.created_by == plan.created_by and sorted(row.lanes) == sorted(plan.lanes):
                row.status = "superseded"
                session.add(row)
                superseded.append(row.id)
        session.add(
            StoredPlan(
                id=plan.plan_id,
                digest=plan.digest,
                desired_revision=plan.desired_revision,
                created_by=plan.created_by,
                created_at=plan.created_at,
                expires_at=plan.expires_at,
                lanes=plan.lanes,
                body=plan.model_dump(mode="json"),
            )
        )
    return superseded


def load(engine: Engine, plan_id: str) -> tuple[Plan, str]:
    """The plan and its status."""
    with session_scope(engine) as session:
        row = session.get(StoredPlan, plan_id)
        if row is None:
            raise PlanNotFound(plan_id)
        return Plan.model_validate(row.body), row.status


def set_status(engine: Engine, plan_id: str, status: str) -> None:
    with session_scope(engine) as session:
        row = session.get(StoredPlan, plan_id)
        if row is not None:
            row.status = status
            session.add(row)


def claim_for_apply(engine: Engine, plan_id: str) -> bool:
    """Move pending -> applying atomically; False if someone else got there first."""
    import sqlalchemy as sa

    with session_scope(engine) as session:
        result = session.execute(
            sa.update(StoredPlan)
            .where(StoredPlan.id == plan_id, StoredPlan.status == "pending")  # type: ignore[arg-type]
            .values(status="applying")
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
