"""`setpoint leases ...`: who holds which lane, and giving a lane back by hand."""

from __future__ import annotations

import typer
from rich.markup import escape

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json
from reconciler.errors import LeaseHeld, LeaseNotFound

app = typer.Typer(
    help=(
        "Lane leases: which worker holds which lane. A lease whose holder died frees itself "
        "at the next plan, apply or pass; `release` is for the rest."
    ),
    no_args_is_help=True,
)


@app.command("list")
def list_leases(output: OutputFormat = OUTPUT_OPTION) -> None:
    """Every lease: lane, plan, holder process, heartbeat age, and whether the holder lives."""
    from reconciler.core.recovery import describe_holder
    from reconciler.presentation.tables import Column, Role, fit_table
    from reconciler.records import leases
    from reconciler.runtime import utcnow

    now = utcnow()
    rows = [
        {
            "lane": lease.lane,
            "plan": lease.plan_id,
            "holder": describe_holder(lease),
            "heartbeatAgeSeconds": round(
                (now - (lease.heartbeat_at or lease.acquired_at)).total_seconds(), 1
            ),
            "expiresAt": lease.expires_at.isoformat(),
            "alive": not leases.holder_gone(lease, now),
        }
        for lease in leases.all_leases(context.ready_engine())
    ]
    if output is OutputFormat.json:
        print_json(rows)
        return
    if not rows:
        console.print("no lane is leased: nothing is being applied")
        return
    columns = (
        Column("LANE", Role.identifier),
        Column("PLAN", Role.identifier),
        Column("HOLDER", Role.flexible),
        Column("HEARTBEAT", Role.lesser),
        Column("STATE"),
    )
    cells = [
        [
            escape(str(row["lane"])),
            str(row["plan"] or "-"),
            escape(str(row["holder"])),
            f"{row['heartbeatAgeSeconds']}s ago",
            "alive" if row["alive"] else "[red]holder gone[/]",
        ]
        for row in rows
    ]
    fit_table(console, columns, cells, wide=False, wide_option=None).print(console, wide=False)


@app.command("release")
def release(
    lane: str = typer.Argument(..., help="Lane key, e.g. product:shop/prod."),
    force: bool = typer.Option(
        False, "--force", help="Also when the holder is alive: it stops before its next action."
    ),
) -> None:
    """Give a lane's lease back (audited). Its plan, if it was being applied, is interrupted."""
    from reconciler.cli.wiring import default_actor
    from reconciler.core.recovery import describe_holder, release_lease
    from reconciler.runtime import utcnow

    try:
        engine = context.ready_engine()
        lease = release_lease(engine, default_actor(), lane, utcnow(), force=force)
    except LeaseNotFound as exc:
        raise fail(str(exc)) from None
    except LeaseHeld as exc:
        raise fail(str(exc)) from None
    console.print(f"released {lane} (was held by {describe_holder(lease)})")
