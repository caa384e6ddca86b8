"""Databases for the fault matrix: a template made once, and a throwaway copy per case.

Every case starts from the same converged fleet; making it once and copying it (a file copy
on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL) keeps the matrix fast without
changing what a case sees: the copy holds the whole history, audit chain included.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.databases import fresh_postgres_database


class Store(Protocol):
    backend: str  # "sqlite" or "postgresql"

    def template_url(self) -> str:
        """Where to build the template; nothing may stay connected to it afterwards."""
        ...

    def copy(self) -> AbstractContextManager[str]:
        """A fresh copy of the template, dropped when the block ends."""
        ...

    def close(self) -> None: ...


class SqliteStore:
    backend = "sqlite"

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._template = directory / "template.db"
        self._copies = 0

    def template_url(self) -> str:
        return f"sqlite:///{self._template}"

    @contextmanager
    def copy(self) -> Iterator[str]:
        self._copies += 1
        path = self._directory / f"case-{self._copies}.db"
        shutil.copyfile(self._template, path)  # WAL checkpointed: the template's engine is gone
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)

    def close(self) -> None:
        return None


class PostgresStore:
    backend = "postgresql"

    def __init__(self, base_url: str) -> None:
        self._base = base_url
        self._template = self._new_name()
        self._admin = sa.create_engine(
            base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        self._execute(f'CREATE DATABASE "{self._template}"')

    @staticmethod
    def _new_name() -> str:
        return f"setpoint_reliability_{secrets.token_hex(6)}"

    def _execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(sa.text(statement))

    def _url(self, database: str) -> str:
        return make_url(self._base).set(database=database).render_as_string(hide_password=False)

    def template_url(self) -> str:
        return self._url(self._template)

    @contextmanager
    def copy(self) -> Iterator[str]:
        name = self._new_name()
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        try:
            yield self._url(name)
        finally:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        self._admin.dispose()


@contextmanager
def empty_database(backend: str, directory: Path, postgres_base: str | None) -> Iterator[str]:
    """A new, empty database on `backend`: a SQLite file in `directory`, or a fresh
    PostgreSQL database next to `postgres_base`'s."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'setpoint-{secrets.token_hex(4)}.db'}"
        return
    if postgres_base is None:
        raise ValueError("PostgreSQL needs a base URL (SETPOINT_TEST_DATABASE_URL)")
    with fresh_postgres_database(postgres_base) as url:
        yield url
