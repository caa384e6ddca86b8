"""The `setpoint` command: assembles the command groups; holds no logic of its own."""

from __future__ import annotations

import typer

from reconciler.cli import (
    adopt,
    audit,
    db,
    demo,
    desired,
    emulator,
    logs,
    reconcile,
    run,
    secrets,
    validate,
)

app = typer.Typer(
    name="setpoint",
    help="Declarative reconciler for products on Dokploy and self-hosted GitHub Actions runners.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


@app.callback()
def main_options(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="Log more to stderr: -v info, -vv debug."
    ),
) -> None:
    """Declarative reconciler for products on Dokploy and self-hosted GitHub Actions runners."""
    logs.configure(verbose)


app.command("demo")(demo.demo)
app.command("validate")(validate.validate)
app.command("schema")(validate.schema)
app.command("plan")(reconcile.plan)
app.command("apply")(reconcile.apply)
app.command("status")(reconcile.status)
app.command("run")(run.run)
app.command("adopt")(adopt.adopt_command)
app.add_typer(audit.app, name="audit")
app.add_typer(secrets.app, name="secrets")
app.add_typer(desired.app, name="desired")
app.add_typer(db.app, name="db")
app.add_typer(emulator.app, name="emulator")


def main() -> None:
    app()
