"""Run and check alembic migrations without an alembic.ini: the engine comes from Setpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

import migrations
from reconciler.records.tables import metadata

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic keeps options in a ConfigParser, which reads `%` as interpolation: a
    # percent-encoded password (`p%40ss`) would crash every command, printing the URL.
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def drift(engine: Engine) -> list[Any]:
    """Differences between the models and the migrated schema; empty means no drift."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, metadata))


def revise(engine: Engine, message: str) -> None:
    """Autogenerate a new revision (a developer tool: `python -m reconciler.records.migrate`)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    import sys

    from reconciler.records.database import make_engine

    target = make_engine(sys.argv[2] if len(sys.argv) > 2 else "sqlite:////tmp/setpoint-revise.db")
    upgrade(target)
    revise(target, sys.argv[1])
