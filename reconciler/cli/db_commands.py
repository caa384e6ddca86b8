"""`setpoint db ...`: create and check the database schema."""

from __future__ import annotations

import typer

from reconciler.cli import context
from reconciler.cli.output import console, fail

app = typer.Typer(help="Database schema: upgrade and check.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from reconciler.records import migrate
    from reconciler.records.database import redacted

    engine = context.engine()
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    where = redacted(context.settings().database_url)
    if before == after:
        console.print(f"{where}: already at {after}")
    else:
        console.print(f"{where}: upgraded {before or 'empty'} -> {after}")


@app.command("check")
def check() -> None:
    """Exit non-zero when the database is behind, or the models drift from the migrations."""
    from reconciler.records import migrate

    engine = context.engine()
    current, head = migrate.current_revision(engine), migrate.head_revision(engine)
    if current != head:
        raise fail(
            f"database is at {current or 'empty'}, newest is {head}: run `setpoint db upgrade`"
        )
    differences = migrate.drift(engine)
    if differences:
        raise fail(f"models and migrations differ: {differences}")
    console.print(f"schema at {head}, no drift")
