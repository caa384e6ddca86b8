"""How plans, apply results and lane status look to a person."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from reconciler.cli.tables import Column, Role, fit_table
from reconciler.core.apply import ActionResult, ApplyResult, ApplyStatus
from reconciler.core.plans import Plan
from reconciler.records.status import LaneStatusRow

RISK_STYLE = {"safe": "green", "disruptive": "yellow", "destructive": "bold red"}
# Every result the engine can report has a style (tests enumerate ActionResult and
# ApplyStatus against these tables): a plan that waits is not a crash.
RESULT_STYLE: dict[ActionResult, str] = {
    "ok": "green",
    "failed": "bold red",
    "retry": "yellow",
    "not_run": "dim",
}
APPLY_STATUS_STYLE: dict[ApplyStatus, str] = {
    "applied": "green",
    "failed": "bold red",
    "waiting": "yellow",
    "refused": "bold red",
}


def value_text(value: object) -> str:
    """A change's before or after as a person reads it (the review pages show it the same)."""
    if value is None:
        return "∅"
    return value if isinstance(value, str) else json.dumps(value)


def render_plan(console: Console, plan: Plan) -> None:
    console.print(
        f"[bold]plan {plan.plan_id}[/] digest {plan.digest[:12]} · desired revision "
        f"{plan.desired_revision} · expires {plan.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    if not plan.actions and not plan.blockers:
        console.print(f"[green]no changes[/]: {len(plan.lanes)} lane(s) match the desired state")
    for action in plan.actions:
        style = RISK_STYLE[action.risk.value]
        after = f" (after {', '.join(action.depends_on)})" if action.depends_on else ""
        console.print(
            f"  [bold]{action.id:<4}[/] [{style}]{action.risk.value:<11}[/] {action.op:<18} "
            f"{escape(action.target)}  [dim]{escape(action.lane)}: {escape(action.reason)}{after}[/]",
            highlight=False,
        )
        for change in action.changes:
            mark = " [dim](secret)[/]" if change.secret else ""
            console.print(
                f"       {escape(change.field)}: {escape(value_text(change.before))} → "
                f"{escape(value_text(change.after))}{mark}",
                highlight=False,
            )
            if change.diff:
                _render_diff(console, change.diff)
    for blocker in plan.blockers:
        where = f" on {escape(blocker.lane)}" if blocker.lane else ""
        console.print(
            f"  [bold red]blocked[/] {blocker.type.value}{where}: {escape(blocker.message)}",
            highlight=False,
        )
    for note in plan.notes:
        console.print(f"  [dim]note: {escape(note)}[/]", highlight=False)
    if plan.actions:
        console.print(f"{len(plan.actions)} action(s): {risk_summary(plan)}")


def risk_summary(plan: Plan) -> str:
    """`2 safe, 1 destructive`: how many actions of each risk, mildest first."""
    risks = {r: sum(1 for a in plan.actions if a.risk.value == r) for r in RISK_STYLE}
    return ", ".join(f"{n} {r}" for r, n in risks.items() if n)


DIFF_STYLE = {"+": "green", "-": "red", "@": "cyan"}


def _render_diff(console: Console, diff: str) -> None:
    """A unified diff the kind made safe to show, indented under its change."""
    for line in diff.splitlines():
        style = "bold" if line.startswith(("+++", "---")) else DIFF_STYLE.get(line[:1])
        text = escape(line)
        console.print(
            f"         [{style}]{text}[/]" if style else f"         {text}", highlight=False
        )


def render_apply(console: Console, result: ApplyResult) -> None:
    if result.refusal is not None:
        console.print(
            f"[bold red]refused[/] {result.refusal.type.value}: {escape(result.refusal.message)}",
            highlight=False,
        )
        return
    for report in result.actions:
        style = RESULT_STYLE[report.result]
        later = f" (tried again in {report.retry_after:.0f}s)" if report.retry_after else ""
        console.print(
            f"  {report.action_id:<4} [{style}]{report.result:<8}[/] {report.op:<18} "
            f"{escape(report.lane)}: {escape(report.message)}{later}",
            highlight=False,
        )
    style = APPLY_STATUS_STYLE[result.status]
    console.print(f"[{style}]{result.status}[/] plan {result.plan_id}")


STATUS_COLUMNS = (
    Column("LANE", Role.identifier),
    Column("STATE"),
    Column("REASON"),
    Column("GEN", Role.lesser),
    Column("UPDATED", Role.lesser),
    Column("LAST PLAN", Role.identifier),
    Column("MESSAGE", Role.flexible),
)


def render_status(console: Console, rows: list[LaneStatusRow], *, wide: bool = False) -> None:
    """One row per lane. Lane keys and plan ids are never cut: at 80 columns or piped, the
    lesser columns give way and a message that does not fit is printed under the table."""
    cells = [_status_cells(row) for row in rows]
    fitted = fit_table(console, STATUS_COLUMNS, cells, wide=wide)
    fitted.print(console, wide=wide)
    if "MESSAGE" in fitted.hidden:
        for row, cell in zip(rows, cells, strict=True):
            if cell[-1]:
                console.print(f"  {escape(row.lane)}: {escape(cell[-1])}", highlight=False)


def speaking_condition(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The condition that explains the lane: Stalled or Reconciling when True, else Ready."""
    flags = {c["type"]: c for c in conditions}
    return next(
        (flags[t] for t in ("Stalled", "Reconciling") if flags.get(t, {}).get("status") == "True"),
        flags.get("Ready", {}),
    )


def lane_state(conditions: list[dict[str, Any]]) -> str:
    """One word for the lane: Stalled, Reconciling, Ready or NotReady."""
    flags = {c["type"]: c for c in conditions}
    for state in ("Stalled", "Reconciling", "Ready"):
        if flags.get(state, {}).get("status") == "True":
            return state
    return "Degraded" if flags.get("Ready", {}).get("reason") == "Degraded" else "NotReady"


STATE_STYLE = {
    "Stalled": "bold red",
    "Degraded": "red",
    "Reconciling": "yellow",
    "Ready": "green",
}


def _status_cells(row: LaneStatusRow) -> list[str]:
    speaking = speaking_condition(row.conditions)
    state = lane_state(row.conditions)
    return [
        escape(row.lane),
        f"[{STATE_STYLE[state]}]{state}[/]" if state in STATE_STYLE else state,
        str(speaking.get("reason", "")),
        str(row.observed_generation or "-"),
        f"{row.updated_at:%Y-%m-%d %H:%M}",
        row.last_applied_plan or "-",
        escape(str(speaking.get("message", ""))),
    ]
