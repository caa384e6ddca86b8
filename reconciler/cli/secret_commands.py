"""`setpoint secrets ...`: the encrypted store behind `fromStore` secret references."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

import typer

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json
from reconciler.errors import SecretStoreError

if TYPE_CHECKING:
    from reconciler.records.secret_store import SecretStore

app = typer.Typer(
    help="The encrypted secret store: values for `fromStore` references.", no_args_is_help=True
)


def _store() -> SecretStore:
    from reconciler.cli.wiring import secret_store
    from reconciler.runtime import utcnow

    store = secret_store(context.ready_engine(), utcnow)  # no runtime here: the wall clock
    if store is None:
        raise fail(
            "SETPOINT_SECRET_STORE_KEY is not set; create a key with `setpoint secrets keygen` "
            "and keep it in your secret manager, not in the database"
        )
    return store


@app.command("keygen")
def keygen() -> None:
    """Print a new random store key (set it as SETPOINT_SECRET_STORE_KEY)."""
    from reconciler.records.secret_store import generate_key

    sys.stdout.write(generate_key() + "\n")


@app.command("set")
def set_(name: str = typer.Argument(..., help="The name `fromStore` references use.")) -> None:
    """Store a secret read from standard input (a prompt on a terminal); never from argv,
    so it stays out of shell history and process listings."""
    from reconciler.cli.wiring import default_actor
    from reconciler.records.secret_store import check_name

    try:
        check_name(name)
    except SecretStoreError as exc:
        raise fail(str(exc), code=2) from None
    store = _store()
    value = getpass.getpass(f"value for {name}: ") if sys.stdin.isatty() else sys.stdin.read()
    value = value.removesuffix("\n").removesuffix("\r")
    try:
        created = store.put(name, value, actor=default_actor())  # audited atomically
    except SecretStoreError as exc:
        raise fail(str(exc)) from None
    console.print(f"{'stored' if created else 'replaced'} secret {name} (value not shown)")


@app.command("list")
def list_(output: OutputFormat = OUTPUT_OPTION) -> None:
    """List stored secret names and when they changed; values are never shown."""
    names = _store().names()
    if output is OutputFormat.json:
        print_json([{"name": n, "updatedAt": at} for n, at in names])
        return
    for name, at in names:
        console.print(f"{name}  [dim]{at}[/]")
    if not names:
        console.print("the secret store is empty")


@app.command("delete")
def delete(name: str = typer.Argument(...)) -> None:
    """Delete a stored secret."""
    from reconciler.cli.wiring import default_actor

    if not _store().delete(name, actor=default_actor()):  # audited atomically
        raise fail(f"no secret named {name!r}")
    console.print(f"deleted secret {name}")
