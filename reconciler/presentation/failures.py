"""One line for a failure an operator can act on, the same in the terminal and on the pages.

`describe` knows Setpoint's own errors, database errors (the driver's message only: engines
are built with `hide_parameters`, and SQLAlchemy's own text adds the statement), file errors
and Dokploy's errors; anything else is a bug and gets None (the caller raises it). What is
imported to describe a failure is imported only when one happens, so `setpoint --help`
loads nothing more.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

# Where the database is, for its one line (asked only when a database error is described).
DatabaseUrl = Callable[[], str]


def describe(exc: BaseException, database_url: DatabaseUrl | None = None) -> str | None:
    """The one-line message for a failure an operator can act on, or None for a bug."""
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return describe(exc.exceptions[0], database_url)  # one failure of a task group
    message = _setpoint(exc) or _database(exc, database_url) or _file(exc) or _dokploy(exc)
    return message


def _setpoint(exc: BaseException) -> str | None:
    from reconciler.errors import SetpointError

    return _first_line(str(exc)) if isinstance(exc, SetpointError) else None


def _database(exc: BaseException, database_url: DatabaseUrl | None) -> str | None:
    if "sqlalchemy" not in sys.modules:  # then it cannot be its error; `--help` stays light
        return None
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    from reconciler.records.database import redacted

    # The driver's own message only: SQLAlchemy's adds the statement and its parameters,
    # and a parameter may be a secret's ciphertext.
    reason = _first_line(str(exc.orig)) if exc.orig is not None else type(exc).__name__
    where = f" {redacted(database_url())}" if database_url is not None else ""
    return f"the database{where} cannot be used: {reason}"


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
