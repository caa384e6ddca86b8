"""Engine creation for the two supported databases (a SQLite file and PostgreSQL), and the
typed helpers every record module uses where SQLModel's typing stops: a model's `sa.Table`
for Core statements, and the count of rows an UPDATE or DELETE changed."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from reconciler.records.columns import json_text

P = ParamSpec("P")
T = TypeVar("T")


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here; SQLite URLs pass through."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def redacted(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(normalise_url(url)).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30}, hide_parameters=True, json_serializer=json_text
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            hide_parameters=True,  # a failed statement's message never shows its values
            json_serializer=json_text,
            connect_args={"connect_timeout": 10, "options": "-c statement_timeout=60000"},
        )
    raise ValueError(f"unsupported database {redacted(url)}: use sqlite:/// or postgresql://")


@contextmanager
def session_scope(engine: Engine, *, write_lock: bool = False) -> Iterator[Session]:
    """One unit of work: committed on success, rolled back on any error.

    `write_lock`: on SQLite, take the write lock before the first read (BEGIN IMMEDIATE), for
    work that reads a row and writes what follows from it (the audit head): a deferred
    transaction would read a snapshot another writer may have moved past by the time it
    writes. PostgreSQL locks the rows it reads FOR UPDATE instead.
    """
    with Session(engine, expire_on_commit=False) as session:
        if write_lock and engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def in_thread(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking storage call in a worker thread, so it never stalls the event loop
    that the loop, the API and provider calls share."""
    return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


def table_of(model: type[SQLModel]) -> sa.Table:
    """The table a SQLModel table class maps, for Core statements (bulk upserts, counts)."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def rows_changed(result: sa.Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (a compare-and-set reads 1 as "won")."""
    if not isinstance(result, sa.CursorResult):
        raise TypeError("rows_changed needs the result of an UPDATE or DELETE")
    return result.rowcount
