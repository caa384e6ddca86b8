"""`setpoint runners ...`: the self-hosted runners of the declared pools, managed or not."""

from __future__ import annotations

from typing import Any

import typer

from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json

app = typer.Typer(
    help=(
        "Runner lanes: one per slot of a RunnerPool. Needs SETPOINT_GITHUB_TOKEN, and a "
        "provider for each Host type (Dokploy for `dokploy-server`)."
    ),
    no_args_is_help=True,
)


@app.command("list")
def list_runner_rows(output: OutputFormat = OUTPUT_OPTION) -> None:
    """Every runner in the pools' scopes: managed ones with lane, host and process;
    unmanaged ones (never touched) with their labels."""
    import anyio

    from reconciler.cli.wiring import open_runtime
    from reconciler.core.planning import stored_fleet_kinds
    from reconciler.kinds import kind_listings

    listing = kind_listings()["runners"]
    from_providers = listing.from_providers
    assert from_providers is not None

    async def run() -> list[dict[str, Any]] | None:
        async with open_runtime(check_config=True) as runtime:
            kinds = stored_fleet_kinds(runtime)
            kind = next((k for k in kinds if k.name == listing.kind), None)
            return None if kind is None else await from_providers(kind)

    rows = anyio.run(run)
    if rows is None:
        raise fail("runners need GitHub: set SETPOINT_GITHUB_TOKEN (and SETPOINT_GITHUB_API_URL)")
    if output is OutputFormat.json:
        print_json(rows)
        return
    _print_table(rows)


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape

    from reconciler.presentation.tables import Column, Role, fit_table

    if not rows:
        console.print("no runners: no pool has a runner yet, and none runs in the pools' scopes")
        return
    columns = [
        Column("RUNNER", Role.identifier),
        Column("SCOPE", Role.lesser),
        Column("MANAGED"),
        Column("STATUS"),
        Column("BUSY"),
        Column("LANE", Role.lesser),
        Column("PROCESS", Role.lesser),
        Column("LABELS / PROBLEM", Role.flexible),
    ]
    cells = [
        [
            escape(row["name"]),
            escape(row["scope"]),
            "yes" if row["managed"] else "no (never touched)",
            row["status"],
            "-" if row["busy"] is None else ("busy" if row["busy"] else "idle"),
            escape(row["lane"] or "-"),
            escape(f"{row['process']}@{row['host']}" if row["process"] else "-"),
            escape(row["problem"] or ", ".join(row["labels"])),
        ]
        for row in rows
    ]
    fit_table(console, columns, cells, wide=False, wide_option=None).print(console, wide=False)
