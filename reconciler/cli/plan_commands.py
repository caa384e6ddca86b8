"""`setpoint plans ...`: read any stored plan, whoever computed it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json
from reconciler.presentation.tables import Column, Role

if TYPE_CHECKING:
    from reconciler.records.plan_store import PlanStatus, PlanSummary

app = typer.Typer(
    help="Stored plans: list them and show one, whoever computed it.", no_args_is_help=True
)

PLAN_COLUMNS = (
    Column("PLAN", Role.identifier),
    Column("STATUS"),
    Column("CREATED (UTC)", Role.lesser),
    Column("BY", Role.lesser),
    Column("ACTIONS"),
    Column("BLOCKERS", Role.lesser),
    Column("LANES", Role.flexible, whole_words=True),
)


def _summary_json(summary: PlanSummary) -> dict[str, object]:
    return {
        "plan_id": summary.plan_id,
        "status": summary.status,
        "created_by": summary.created_by,
        "created_at": summary.created_at.isoformat(),
        "expires_at": summary.expires_at.isoformat(),
        "lanes": summary.lanes,
        "actions": summary.actions,
        "blockers": summary.blockers,
        "digest": summary.digest,
    }


def _summary_cells(summary: PlanSummary) -> list[str]:
    return [
        summary.plan_id,
        summary.status,
        f"{summary.created_at:%Y-%m-%d %H:%M}",
        escape(summary.created_by),
        str(summary.actions),
        str(summary.blockers),
        escape(", ".join(summary.lanes)),
    ]


@app.command("list")
def list_plans(
    status: str | None = typer.Option(
        None, "--status", help="Only plans in this status, e.g. pending, applied, failed."
    ),
    lane: str | None = typer.Option(None, "--lane", help="Only plans covering this lane key."),
    limit: int = typer.Option(20, "--limit", min=1, help="Show the newest N plans."),
    output: OutputFormat = OUTPUT_OPTION,
    wide: bool = typer.Option(False, "--wide", help="Show every column."),
) -> None:
    """The newest stored plans: id, status, who computed them, their actions and lanes."""
    from reconciler.presentation.tables import fit_table
    from reconciler.records import plan_store

    wanted = _status(status)
    found = plan_store.summaries(context.ready_engine(), status=wanted, lane=lane, limit=limit)
    if output is OutputFormat.json:
        print_json([_summary_json(s) for s in found])
        return
    if not found:
        console.print("no stored plan matches")
        return
    cells = [_summary_cells(s) for s in found]
    fit_table(console, PLAN_COLUMNS, cells, wide=wide).print(console, wide=wide)


def _status(value: str | None) -> PlanStatus | None:
    from reconciler.records.plan_store import PlanStatus

    if value is None:
        return None
    try:
        return PlanStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in PlanStatus)
        raise fail(f"no plan status {value!r}; one of: {known}") from None


@app.command("show")
def show(
    plan_id: str = typer.Argument(..., help="A plan id, as `plan` or `plans list` printed."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """One stored plan in full: its actions, changes, blockers and status."""
    from reconciler.errors import PlanNotFound
    from reconciler.presentation.console import render_plan
    from reconciler.records import plan_store

    try:
        plan, status = plan_store.load(context.ready_engine(), plan_id)
    except PlanNotFound:
        raise fail(f"no plan {plan_id!r}; `setpoint plans list` shows the stored ones") from None
    from reconciler.core.failure_evidence import evidence_of

    found = evidence_of(context.ready_engine(), plan_id=plan_id, limit=20)
    if output is OutputFormat.json:
        evidence = [e.as_json() for e in found]
        print_json({"status": status.value, **plan.model_dump(mode="json"), "evidence": evidence})
        return
    render_plan(console, plan)
    console.print(
        f"status [bold]{status.value}[/] · computed by {escape(plan.created_by)} at "
        f"{plan.created_at:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    for item in found:
        console.print(f"failed: {item.action_id} on {escape(item.lane or '-')}", highlight=False)
        for line in item.lines():
            console.print(f"  {escape(line)}", highlight=False)
