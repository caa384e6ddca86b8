"""`setpoint previews ...`: the pull requests that have, wait for, or had a preview."""

from __future__ import annotations

import typer

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, print_json

app = typer.Typer(
    help=(
        "Preview lanes: one per pull request that qualifies under its product's preview "
        "policy. `setpoint run` finds the pull requests (needs SETPOINT_GITHUB_TOKEN)."
    ),
    no_args_is_help=True,
)


@app.command("list")
def list_previews(output: OutputFormat = OUTPUT_OPTION) -> None:
    """Every anchor: its PR, head, the commit its preview runs, lane and state (live,
    waiting with its place, ending, ended, gone, refused)."""
    from rich.markup import escape

    from reconciler.fleet import load_fleet
    from reconciler.kinds import kind_listings
    from reconciler.presentation.tables import Column, Role, fit_table
    from reconciler.records.ownership import snapshot
    from reconciler.runtime import utcnow

    listing = kind_listings()["previews"].from_records
    assert listing is not None
    engine = context.ready_engine()
    rows = listing(load_fleet(engine), snapshot(engine), utcnow())
    if output is OutputFormat.json:
        print_json(rows)
        return
    if not rows:
        console.print(
            "no previews: none of the products' pull requests qualifies yet "
            "(previews are found by `setpoint run`)"
        )
        return
    columns = [
        Column("LANE", Role.identifier),
        Column("PR", Role.identifier),
        Column("HEAD", Role.lesser),
        Column("RUNS", Role.lesser),
        Column("STATE"),
        Column("DETAIL", Role.flexible),
    ]
    cells = [
        [
            escape(str(row["lane"])),
            f"{row['repository']}#{row['pullRequest']}",
            str(row["headSha"])[:7],
            str(row["runningSha"] or "-")[:7],
            str(row["state"]),
            escape(str(row["detail"])),
        ]
        for row in rows
    ]
    fit_table(console, columns, cells, wide=False, wide_option=None).print(console, wide=False)
