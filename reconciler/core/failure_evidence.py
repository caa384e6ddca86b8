"""Failure evidence, read back: what a provider said about a failed action (a deployment's
row and the tail of its log), as its action's result recorded it in the audit trail. One
reader for `setpoint status LANE`, `setpoint plans show`, the lane page and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from reconciler.records import audit
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope

_LOOK_BACK = 200  # action results read to find the newest with evidence


@dataclass(frozen=True)
class FailureEvidence:
    lane: str | None
    plan_id: str | None
    action_id: str | None
    recorded_at: datetime
    message: str
    evidence: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "planId": self.plan_id,
            "actionId": self.action_id,
            "recordedAt": self.recorded_at.isoformat(),
            "message": self.message,
            "evidence": self.evidence,
        }

    def lines(self) -> list[str]:
        """The evidence as text, one fact a line (the log tail last)."""
        e = self.evidence
        said = []
        if e.get("health_check"):
            said.append(
                f"health check {e['health_check']} answered {e.get('health_status') or '-'}: "
                f"{e.get('health_reason')}"
            )
        if e.get("deployment_id"):
            said.append(f"deployment {e['deployment_id']} ended {e.get('status')}")
        if "title" in e:
            said.append(
                f"title: {e.get('title') or '-'} (started {e.get('started_at') or '?'}, "
                f"finished {e.get('finished_at') or '?'})"
            )
        if e.get("description"):
            said.append(f"description: {e['description']}")
        if "error" in e:
            said.append(f"error: {e.get('error') or 'none given (Dokploy leaves it empty)'}")
        if e.get("log_unavailable"):
            said.append(f"build log not readable: {e['log_unavailable']}")
        tail = e.get("log_tail") or []
        if tail:
            said.append(f"build log, last {len(tail)} line(s):")
            said.extend(f"  {line}" for line in tail)
        return said


def evidence_of(
    engine: Engine, *, lane: str | None = None, plan_id: str | None = None, limit: int = 1
) -> list[FailureEvidence]:
    """The newest failure evidence of a lane or a plan, newest first."""
    with session_scope(engine) as session:
        records = audit.list_records(
            session, lane=lane, plan_id=plan_id, event=AuditEvent.action_result, limit=_LOOK_BACK
        )
    found = [
        FailureEvidence(
            lane=r.lane,
            plan_id=r.plan_id,
            action_id=r.action_id,
            recorded_at=r.at,
            message=str(r.data.get("message", "")),
            evidence=dict(r.data["evidence"]),
        )
        for r in reversed(records)
        if isinstance(r.data.get("evidence"), dict)
    ]
    return found[:limit]
