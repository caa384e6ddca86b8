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
    import time

    from rich.markup import escape

    from reconciler.cli.tables import Column, Role, fit_table
    from reconciler.fleet import load_fleet
    from reconciler.kinds.preview.lanes import preview_set, running_shas
    from reconciler.records.ownership import snapshot

    engine = context.ready_engine()
    running = running_shas(snapshot(engine))
    views = preview_set(load_fleet(engine), time.time(), running).anchors
    rows = [
        {
            "product": v.product,
            "pullRequest": v.spec.number,
            "repository": v.spec.repository,
            "headSha": v.spec.head_sha,
            # What its service runs, as its last deploy recorded it (None: nothing yet).
            "runningSha": v.running_sha,
            "lane": v.lane,
            "state": v.state.value,
            "detail": v.detail,
            "source": v.spec.source,
        }
        for v in views
    ]
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
