"""The suite's PostgreSQL databases are lent to one test at a time (tests/databases.py): a
database lent again has no rows and restarted sequences whatever the last test wrote, and
one whose schema a test changed is dropped, never lent again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import col

from reconciler.records.database import session_scope
from reconciler.records.notifications import NewNotification, Notification, add_new
from reconciler.records.operator_tokens import issue
from reconciler.records.tables import metadata
from reconciler.runtime import utcnow
from tests.databases import PostgresPool, postgres_base_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pool() -> Iterator[PostgresPool]:
    base = postgres_base_url()
    if base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    lent = PostgresPool(base)
    yield lent
    lent.close()


def write_rows(url: str) -> int:
    """An operator token and a notification; the notification's id (from its sequence)."""
    engine = sa.create_engine(url)
    try:
        with session_scope(engine) as session:
            issue(session, "alice", utcnow())
            item = NewNotification("ops", "key-1", "apply_failed", None, "title", "body", None)
            add_new(session, [item], utcnow())
        with session_scope(engine) as session:
            return int(session.execute(sa.select(col(Notification.id))).scalar_one())
    finally:
        engine.dispose()


def row_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(
                    sa.select(sa.func.count()).select_from(table)
                ).scalar_one()
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_database_lent_again_is_empty_and_its_sequences_restart(pool: PostgresPool) -> None:
    with pool.database() as first:
        seq = write_rows(first)
        left_open = sa.create_engine(first).connect()  # a connection the test never closed
        left_open.execute(sa.text("SELECT 1"))
    left_open.invalidate()  # ended by the pool: nothing to roll back
    with pool.database() as second:
        assert second == first  # the same database, lent again
        assert set(row_counts(second).values()) == {0}
        assert write_rows(second) == seq


def test_a_database_whose_schema_a_test_changed_is_not_lent_again(pool: PostgresPool) -> None:
    with pool.database() as first:
        engine = sa.create_engine(first)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE scratch (id integer)"))
        engine.dispose()
    with pool.database() as second:
        assert second != first
        assert "scratch" not in table_names(second)
