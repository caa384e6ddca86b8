"""One line for a failure an operator can act on; a traceback only with `--debug`.

`SetpointGroup` is the `setpoint` command's click group: a command that raises one of the
failures below prints `error: <one line>` and exits 1. A programming error still raises.
What is imported to describe a failure is imported only when one happens, so `--help`
loads nothing more.
"""

from __future__ import annotations

import sys
from typing import Any

from typer.core import TyperGroup

from reconciler.cli.output import fail

# Set by `--debug` for the command being run: re-raise, so the traceback is shown.
state: dict[str, bool] = {"debug": False}


class SetpointGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        state["debug"] = False
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = None if state["debug"] else describe(exc)
            if message is None:
                raise
            raise fail(f"{message} (run with --debug for the traceback)") from None


def describe(exc: BaseException) -> str | None:
    """The one-line message for a failure an operator can act on, or None for a bug."""
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return describe(exc.exceptions[0])  # one failure out of a task group: that one
    for describer in (_setpoint, _database, _file, _dokploy):
        message = describer(exc)
        if message is not None:
            return message
    return None


def _setpoint(exc: BaseException) -> str | None:
    from reconciler.errors import SetpointError

    return _first_line(str(exc)) if isinstance(exc, SetpointError) else None


def _database(exc: BaseException) -> str | None:
    if "sqlalchemy" not in sys.modules:  # then it cannot be its error; `--help` stays light
        return None
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    from reconciler.cli import context
    from reconciler.records.database import redacted

    # The driver's own message only: SQLAlchemy's adds the statement and its parameters,
    # and a parameter may be a secret's ciphertext.
    reason = _first_line(str(exc.orig)) if exc.orig is not None else type(exc).__name__
    return f"the database {redacted(context.settings().database_url)} cannot be used: {reason}"


def _file(exc: BaseException) -> str | None:
    if not isinstance(exc, OSError) or exc.filename is None:
        return None
    return f"cannot use {exc.filename}: {exc.strerror or type(exc).__name__}"


def _dokploy(exc: BaseException) -> str | None:
    if "providers.dokploy.errors" not in sys.modules:
        return None
    from providers.dokploy.errors import DokployError

    return f"Dokploy: {_first_line(str(exc))}" if isinstance(exc, DokployError) else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no message"
