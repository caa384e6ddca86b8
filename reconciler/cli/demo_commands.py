"""`setpoint demo`: see Setpoint work end to end, with nothing to configure."""

from __future__ import annotations

import typer

from reconciler.cli.output import console, fail


def demo() -> None:
    """See the whole loop work on one machine, with nothing to configure.

    Serves the Dokploy emulator on loopback, uses a throwaway SQLite database and the example
    fleet: plan, apply, every lane converged, the audit trail, then an empty second plan.
    """
    import anyio

    from reconciler.demo.run import run_demo

    try:
        outcome = anyio.run(run_demo, console)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    if not outcome.converged:
        raise typer.Exit(1)
