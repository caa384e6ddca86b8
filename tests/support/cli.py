"""Run the real `setpoint` Typer app in process, on a given database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner, Result

from reconciler.cli import context
from reconciler.cli.app import app

Invoke = Callable[..., Result]


def invoker(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    monkeypatch.setenv("SETPOINT_DATABASE_URL", database_url)
    context.settings.cache_clear()
    context.engine.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        # Settings are read per command, as a fresh process would.
        context.settings.cache_clear()
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    yield invoke
    context.engine().dispose()
    context.settings.cache_clear()
    context.engine.cache_clear()
