"""Run the real `setpoint` Typer app in process, on a test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from reconciler.cli import context
from reconciler.cli.app import app

Invoke = Callable[..., Result]


def _invoker(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    monkeypatch.setenv("SETPOINT_DATABASE_URL", database_url)
    context.settings.cache_clear()
    context.engine.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield invoke
    context.engine().dispose()
    context.settings.cache_clear()
    context.engine.cache_clear()


@pytest.fixture
def setpoint(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invoke]:
    """`setpoint` on a migrated database."""
    yield from _invoker(database_url, monkeypatch)


@pytest.fixture
def setpoint_on_empty_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invoke]:
    yield from _invoker(database_url, monkeypatch)
