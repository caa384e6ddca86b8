"""`setpoint demo`: see Setpoint work end to end, with nothing to configure."""

from __future__ import annotations

import typer

from reconciler.cli.output import console, fail


def demo(
    serve: bool = typer.Option(
        False,
        "--serve",
        help="Keep the emulator and the plan review pages up after the demo, until Ctrl-C.",
    ),
) -> None:
    """See the whole loop work on one machine, with nothing to configure.

    Serves the Dokploy emulator on loopback, uses a throwaway SQLite database and the example
    fleet: plan, apply, every lane converged, the audit trail, then an empty second plan.
    The plan review pages are served on loopback while it runs; `--serve` keeps them up.
    """
    import anyio

    from reconciler.composition import run_demo

    async def keep_serving(url: str) -> None:
        console.print(
            f"\nThe fleet in a browser: [bold]{url}/lanes[/] (plans, audit trail, previews); "
            "Ctrl-C stops the pages and deletes the demo database."
        )
        await anyio.sleep_forever()

    try:
        outcome = anyio.run(lambda: run_demo(console, keep_serving=keep_serving if serve else None))
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        console.print("stopped")
        return
    if not outcome.converged:
        raise typer.Exit(1)
