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


@cache
def engine() -> Engine:
    from reconciler.records.database import make_engine

    return make_engine(settings().database_url)


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
