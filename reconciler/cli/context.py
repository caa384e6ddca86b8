"""What commands share: settings and an engine on the configured database.

Settings (pydantic-settings) and the database layer are imported when first asked for, not
with this module: every command module imports it, and `--help` needs neither.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from reconciler.settings import Settings


@cache
def settings() -> Settings:
    """The settings; a value out of range is one line naming its variable, then exit 1."""
    from pydantic import ValidationError

    from reconciler.cli.output import fail
    from reconciler.settings import Settings, describe_invalid

    try:
        return Settings()
    except ValidationError as exc:
        raise fail(describe_invalid(exc)) from None


def database_is_explicit() -> bool:
    """Whether SETPOINT_DATABASE_URL was set (rather than the embedded file by default)."""
    return "database_url" in settings().model_fields_set


def require_explicit_database(command: str) -> None:
    """A service keeps state that replicas and restarts must share: it is never started on a
    SQLite file made up in the working directory (two replicas would each have their own)."""
    from reconciler.cli.output import fail

    if not database_is_explicit():
        raise fail(
            f"`setpoint {command}` needs SETPOINT_DATABASE_URL, where its state lives: "
            "postgresql+psycopg://... (replicas share it) or sqlite:///path/setpoint.db "
            "(one process)"
        )


@cache
def engine() -> Engine:
    from reconciler.records.database import make_engine

    url = settings().database_url
    if not database_is_explicit():
        _say_default_file(url)
    return make_engine(url)


def _say_default_file(url: str) -> None:
    """One-shot commands keep a default; the first one says where it put the state."""
    from pathlib import Path

    from reconciler.cli.output import errors

    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        errors.print(
            f"[dim]keeping state in {path} (set SETPOINT_DATABASE_URL to keep it elsewhere)[/]",
            highlight=False,
        )


def ready_engine() -> Engine:
    """The engine, with its schema current.

    The embedded SQLite file is migrated on first use; a shared PostgreSQL database is
    migrated only by an explicit `setpoint db upgrade`, so replicas never race a migration.
    """
    from reconciler.cli.output import fail
    from reconciler.records import migrate

    current = engine()
    at, head = migrate.current_revision(current), migrate.head_revision(current)
    if at == head:
        return current
    if current.dialect.name == "sqlite":
        migrate.upgrade(current)
        return current
    raise fail(
        f"database schema is at {at or 'empty'}, newest is {head}: run `setpoint db upgrade`"
    )
