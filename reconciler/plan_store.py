"""Plans in the database: save, load, and move through their statuses."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from reconciler.plan import Plan
from reconciler.store.database import session_scope
from reconciler.store.plans import StoredPlan


class PlanNotFound(LookupError):
    pass


def save(engine: Engine, plan: Plan) -> None:
    with session_scope(engine) as session:
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
