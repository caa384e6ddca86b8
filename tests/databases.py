"""Throwaway databases for storage tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL runs when SETPOINT_TEST_DATABASE_URL is set (CI sets it). Each test gets a new
database so runs never share state; failing to reach the server fails the test, it never
skips, because a skipped PostgreSQL suite in CI would hide exactly the bugs it is for.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reconciler.records.database import normalise_url

POSTGRES_ENV = "SETPOINT_TEST_DATABASE_URL"


def postgres_base_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    return normalise_url(url) if url else None


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
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
