"""Fixtures every test package shares: databases on both backends, example paths."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy.engine import Engine

from reconciler.records.database import make_engine
from tests.databases import (
    PostgresPool,
    fresh_postgres_database,
    migrated_sqlite_file,
    postgres_base_url,
)
from tests.support.cli import Invoke, invoker

# CI runs the same examples every time (no flaky discoveries on a shared machine) and has
# no deadline (a loaded 2-core machine is slow); locally, hypothesis explores afresh.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# Fixtures shared across packages, kept beside their helpers in tests/support.
pytest_plugins = ["tests.support.previews"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONTRACTS = ROOT / "tests" / "contracts"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once for the session."""
    return migrated_sqlite_file(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_pool() -> Iterator[PostgresPool]:
    """Migrated PostgreSQL databases lent to one test at a time, dropped at the end."""
    base = postgres_base_url()
    assert base is not None, "asked for only when SETPOINT_TEST_DATABASE_URL is set"
    pool = PostgresPool(base)
    yield pool
    pool.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own: SQLite always, PostgreSQL when SETPOINT_TEST_DATABASE_URL is
    set. Empty, unless the test takes `engine`: then migrated already, with no rows (the
    `engine` fixture would migrate it anyway): a copy of the session's migrated SQLite
    file, or an emptied database of the session's PostgreSQL pool."""
    migrated = "engine" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "setpoint.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    base = postgres_base_url()
    if base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    if migrated:
        pool: PostgresPool = request.getfixturevalue("postgres_pool")
        with pool.database() as url:
            yield url
        return
    with fresh_postgres_database(base) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated database with no rows, on each backend."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def setpoint(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invoke]:
    """`setpoint` on a migrated database."""
    yield from invoker(database_url, monkeypatch)


@pytest.fixture
def setpoint_on_empty_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invoke]:
    yield from invoker(database_url, monkeypatch)
