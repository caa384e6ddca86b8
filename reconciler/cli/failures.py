"""One line for a failure an operator can act on; a traceback only with `--debug`.

`SetpointGroup` is the `setpoint` command's click group: a command that raises a failure
`presentation.failures.describe` knows prints `error: <one line>` and exits 1. A
programming error still raises.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

from reconciler.cli.output import fail
from reconciler.presentation import failures

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
    """`presentation.failures.describe`, naming the database this command was set to use."""
    return failures.describe(exc, _database_url)


def _database_url() -> str:
    from reconciler.cli import context

    return context.settings().database_url
