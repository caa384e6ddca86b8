"""Throwaway databases for storage tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL runs when SETPOINT_TEST_DATABASE_URL is set (CI sets it). Each test gets a new
database so runs never share state; failing to reach the server fails the test, it never
skips, because a skipped PostgreSQL suite in CI would hide exactly the bugs it is for.

A test that wants a migrated database gets one without running the migrations: a copy of a
SQLite file migrated once per session, or a PostgreSQL database of the session's pool,
emptied since its last test (`PostgresPool`). Migrating, and on PostgreSQL creating and
dropping, a database for each test was most of a storage test's time.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from reconciler.records.database import make_engine, normalise_url
from reconciler.records.migrate import current_revision, upgrade
from reconciler.records.tables import metadata

POSTGRES_ENV = "SETPOINT_TEST_DATABASE_URL"


def postgres_base_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    return normalise_url(url) if url else None


def migrate(url: str) -> None:
    """Run every migration on the database at `url`."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def migrated_sqlite_file(folder: Path) -> Path:
    """A SQLite file at the head revision, to copy for each test that wants one."""
    path = folder / "migrated.db"
    migrate(f"sqlite:///{path}")
    return path


class PostgresPool:
    """Migrated PostgreSQL databases for the session, each lent to one test at a time and
    emptied when it is given back: every row deleted, every sequence restarted, every
    connection the test left behind ended. Creating, migrating and dropping a database for
    each test cost about a second; emptying one costs a few milliseconds. A database whose
    tables or revision the test changed is dropped instead of lent again."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._free: list[str] = []
        self._made: list[str] = []
        self._admin = sa.create_engine(
            base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        self._tables: frozenset[str] = frozenset()  # what a migrated database has
        self._revision: str | None = None

    @contextmanager
    def database(self) -> Iterator[str]:
        """The URL of an empty migrated database, the test's alone until it ends."""
        name = self._free.pop() if self._free else self._create()
        url = self._url(name)
        try:
            yield url
        finally:
            if self._emptied(url):
                self._free.append(name)
            else:
                self._drop(name)

    def close(self) -> None:
        for name in list(self._made):
            self._drop(name)
        self._admin.dispose()

    def _url(self, name: str) -> str:
        return make_url(self._base_url).set(database=name).render_as_string(hide_password=False)

    def _create(self) -> str:
        name = f"setpoint_test_{secrets.token_hex(6)}"
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self._made.append(name)
        migrate(self._url(name))
        engine = sa.create_engine(self._url(name), poolclass=NullPool)
        try:
            self._tables = frozenset(sa.inspect(engine).get_table_names())
            self._revision = current_revision(engine)
        finally:
            engine.dispose()
        return name

    def _drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._made.remove(name)

    def _emptied(self, url: str) -> bool:
        """Empty the database at `url` as migrated; False when it is not as migrated."""
        engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SET lock_timeout = '10s'"))
                connection.execute(_END_OTHER_CONNECTIONS)
                connection.commit()
                if frozenset(sa.inspect(connection).get_table_names()) != self._tables:
                    return False
                if connection.execute(_REVISION).scalar_one_or_none() != self._revision:
                    return False
                for table in reversed(metadata.sorted_tables):
                    connection.execute(table.delete())
                connection.execute(_RESTART_SEQUENCES)
                connection.commit()
            return True
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()


_END_OTHER_CONNECTIONS = sa.text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
_REVISION = sa.text("SELECT version_num FROM alembic_version")
_RESTART_SEQUENCES = sa.text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false) "
    "FROM pg_sequences WHERE schemaname = 'public'"
)


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """A new empty database, dropped at the end."""
    name = f"setpoint_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(
        base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
