"""A plan written by `setpoint plan --out`, handed back to `apply`.

The file is only a way to name a stored plan and to show a reviewer what it does: apply
always runs the stored plan. So the file must be that plan exactly: its digest must match
its own content (nothing in it was edited) and the stored plan's digest (it is the plan it
names).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from reconciler.core.plan_formats import body_digest, plan_of_body
from reconciler.core.plans import Plan
from reconciler.errors import PlanFileRejected
from reconciler.records import plan_store


def _read_body(path: Path) -> dict[str, Any]:
    not_a_plan = PlanFileRejected(f"{path} is not a plan written by `setpoint plan --out`")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanFileRejected(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise not_a_plan from None
    if not isinstance(body, dict):
        raise not_a_plan
    return body


def _plan(path: Path, body: dict[str, Any]) -> Plan:
    try:
        return plan_of_body(body)
    except ValidationError:
        raise PlanFileRejected(f"{path} is not a plan written by `setpoint plan --out`") from None


def read_plan_file(path: Path) -> Plan:
    return _plan(path, _read_body(path))


def content_digest(plan: Plan) -> str:
    return body_digest(plan.model_dump(mode="json"))


def stored_plan_of_file(engine: Engine, path: Path) -> str:
    """The id of the stored plan `path` holds a copy of; `PlanFileRejected` if it is not one
    (`PlanNotFound` if no such plan is stored). The digest is checked against the file's
    own content as its format wrote it, so a file from before an upgrade still names its plan."""
    body = _read_body(path)
    written = _plan(path, body)
    if body_digest(body) != written.digest:
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
