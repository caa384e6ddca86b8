"""A plan written by `setpoint plan --out`, handed back to `apply`.

The file is only a way to name a stored plan and to show a reviewer what it does: apply
always runs the stored plan. So the file must be that plan exactly: its digest must match
its own content (nothing in it was edited) and the stored plan's digest (it is the plan it
names).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from reconciler.core.plans import Plan, plan_digest
from reconciler.errors import PlanFileRejected
from reconciler.records import plan_store


def read_plan_file(path: Path) -> Plan:
    try:
        return Plan.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanFileRejected(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValidationError:
        raise PlanFileRejected(f"{path} is not a plan written by `setpoint plan --out`") from None


def content_digest(plan: Plan) -> str:
    return plan_digest(
        desired_revision=plan.desired_revision,
        actions=plan.actions,
        blockers=plan.blockers,
        fingerprints=plan.fingerprints,
        generations=plan.generations,
    )


def stored_plan_of_file(engine: Engine, path: Path) -> str:
    """The id of the stored plan `path` holds a copy of; `PlanFileRejected` if it is not one
    (`PlanNotFound` if no such plan is stored)."""
    written = read_plan_file(path)
    if content_digest(written) != written.digest:
        raise PlanFileRejected(
            f"{path} was edited after `setpoint plan` wrote it: its content does not match "
            f"its digest {written.digest[:12]}"
        )
    stored, _ = plan_store.load(engine, written.plan_id)
    if stored.digest != written.digest:
        raise PlanFileRejected(
            f"{path} has digest {written.digest[:12]}, but stored plan {written.plan_id} has "
            f"{stored.digest[:12]}: it is not that plan"
        )
    return written.plan_id
