"""The `setpoint` command: assembles the command groups; holds no logic of its own."""

from __future__ import annotations

import typer

from reconciler.cli import (
    adopt_commands,
    audit_commands,
    db_commands,
    demo_commands,
    desired_commands,
    emulator_commands,
    failures,
    forget_commands,
    grant_commands,
    lease_commands,
    logs,
    notify_commands,
    plan_commands,
    preview_commands,
    reconcile_commands,
    request_commands,
    rollback_commands,
    run_commands,
    runner_commands,
    secret_commands,
    serve_commands,
    token_commands,
    validate_commands,
)

app = typer.Typer(
    name="setpoint",
    help="Declarative reconciler for products on Dokploy and self-hosted GitHub Actions runners.",
    no_args_is_help=True,
    cls=failures.SetpointGroup,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


@app.callback()
def main_options(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="Log more to stderr: -v info, -vv debug."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="On an error, show the traceback instead of one line."
    ),
) -> None:
    """Declarative reconciler for products on Dokploy and self-hosted GitHub Actions runners."""
    failures.state["debug"] = debug
    logs.configure(verbose)


app.command("demo")(demo_commands.demo)
app.command("validate")(validate_commands.validate)
app.command("schema")(validate_commands.schema)
app.command("plan")(reconcile_commands.plan)
app.command("apply")(reconcile_commands.apply)
app.command("status")(reconcile_commands.status)
app.command("run")(run_commands.run)
app.command("serve")(serve_commands.serve_api)
app.command("reconcile")(request_commands.reconcile_request)
app.command("adopt")(adopt_commands.adopt_command)
app.command("forget")(forget_commands.forget)
app.command("rollback")(rollback_commands.rollback)
app.command("promote")(rollback_commands.promote)
app.add_typer(plan_commands.app, name="plans")
app.add_typer(audit_commands.app, name="audit")
app.add_typer(grant_commands.app, name="grants")
app.add_typer(token_commands.app, name="tokens")
app.add_typer(secret_commands.app, name="secrets")
app.add_typer(desired_commands.app, name="desired")
app.add_typer(db_commands.app, name="db")
app.add_typer(emulator_commands.app, name="emulator")
app.add_typer(lease_commands.app, name="leases")
app.add_typer(preview_commands.app, name="previews")
app.add_typer(runner_commands.app, name="runners")
app.add_typer(notify_commands.app, name="notify")


def main() -> None:
    app()
