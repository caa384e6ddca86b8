"""The `setpoint` command: assembles the command groups; holds no logic of its own."""

from __future__ import annotations

import typer

from reconciler.cli import emulator

app = typer.Typer(
    name="setpoint",
    help="Declarative reconciler for products on Dokploy and self-hosted GitHub Actions runners.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(emulator.app, name="emulator")


def main() -> None:
    app()
