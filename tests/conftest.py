"""Fixtures every test package shares: databases on both backends, example paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy.engine import Engine

from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from tests.databases import fresh_postgres_database, postgres_base_url
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite always, PostgreSQL when SETPOINT_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'setpoint.db'}"
        return
    base = postgres_base_url()
    if base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    with fresh_postgres_database(base) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend."""
    engine = make_engine(database_url)
    upgrade(engine)
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
