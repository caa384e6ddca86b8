"""`setpoint status LANE`: one lane in full: its conditions, its health watch's latest
verdict, the evidence of its last failed deploy, and the notifications sent about it."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import Engine

from reconciler.core.failure_evidence import evidence_of
from reconciler.records import lane_health, notifications
from reconciler.records.database import session_scope
from reconciler.records.status import LaneStatusRow


def find_lane(rows: list[LaneStatusRow], name: str) -> LaneStatusRow | None:
    """The row of `name`: a lane key (`product:shop/testing`) or a key without its kind."""
    exact = [r for r in rows if r.lane == name]
    if exact:
        return exact[0]
    matches = [r for r in rows if r.lane.split(":", 1)[-1] == name]
    return matches[0] if len(matches) == 1 else None


def lane_detail(engine: Engine, row: LaneStatusRow) -> dict[str, Any]:
    verdict = lane_health.latest(engine, [row.lane]).get(row.lane)
    with session_scope(engine) as session:
        told = notifications.recent(session, lane=row.lane, limit=10)
    return {
        "lane": row.lane,
        "conditions": row.conditions,
        "observedGeneration": row.observed_generation,
        "lastAppliedPlan": row.last_applied_plan,
        "health": None
        if verdict is None
        else {
            "ok": verdict.ok,
            "check": verdict.check_url,
            "status": verdict.status_code,
            "reason": verdict.reason,
            "checkedAt": verdict.checked_at.isoformat(),
            "failures": verdict.failures,
            "failingSince": verdict.failing_since.isoformat() if verdict.failing_since else None,
            "passedAt": verdict.passed_at.isoformat() if verdict.passed_at else None,
        },
        "lastFailure": next(
            (e.as_json() for e in evidence_of(engine, lane=row.lane, limit=1)), None
        ),
        "notifications": [
            {
                "sink": n.sink,
                "trigger": n.trigger,
                "state": n.state,
                "attempts": n.attempts,
                "createdAt": n.created_at.isoformat(),
            }
            for n in told
        ],
    }


def render_lane_detail(console: Console, engine: Engine, row: LaneStatusRow) -> None:
    say = console.print
    say(f"[bold]{escape(row.lane)}[/]", highlight=False)
    for c in row.conditions:
        reason = f" {c['reason']}" if c["status"] == "True" or c["type"] == "Ready" else ""
        message = f": {escape(c['message'])}" if c.get("message") else ""
        say(f"  {c['type']}={c['status']}{reason}{message}", highlight=False)
    verdict = lane_health.latest(engine, [row.lane]).get(row.lane)
    if verdict is not None:
        state = "passes" if verdict.ok else f"FAILS ({verdict.failures} check(s))"
        say(
            f"health: {state}: {escape(verdict.check_url)} {escape(verdict.reason)} "
            f"(checked {verdict.checked_at:%Y-%m-%d %H:%M:%S} UTC)",
            highlight=False,
        )
    for found in evidence_of(engine, lane=row.lane, limit=1):
        say(
            f"last failure ({found.plan_id} {found.action_id}, "
            f"{found.recorded_at:%Y-%m-%d %H:%M:%S} UTC):",
            highlight=False,
        )
        for line in found.lines():
            say(f"  {escape(line)}", highlight=False)
    with session_scope(engine) as session:
        told = notifications.recent(session, lane=row.lane, limit=5)
    for n in told:
        say(
            f"notified {escape(n.sink)}: {n.trigger} at {n.created_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"{n.state} after {n.attempts} try(s)",
            highlight=False,
        )
