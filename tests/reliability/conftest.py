"""Reliability suites: a reduced size by default (CI), the full size with
SETPOINT_RELIABILITY_FULL=1 (tests/support/backends.py). `bench/reliability.py` runs the full
size and prints the tables docs/reliability.md shows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import anyio
import pytest

from tests.databases import postgres_base_url
from tests.reliability import matrix
from tests.reliability.stores import PostgresStore, SqliteStore, Store, empty_database


@cache
def recorded_procedures() -> tuple[matrix.ProcedureUse, ...]:
    """The procedures a clean run calls, recorded once at collection (SQLite, in process)."""
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory))
        return anyio.run(matrix.make_baseline, store).procedures


class Baselines:
    """One baseline per backend, made on first use and dropped at the end of the session."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._made: dict[str, matrix.Baseline] = {}

    def get(self, backend: str) -> matrix.Baseline:
        if backend not in self._made:
            self._made[backend] = anyio.run(matrix.make_baseline, self._store(backend))
        return self._made[backend]

    def _store(self, backend: str) -> Store:
        if backend == "sqlite":
            return SqliteStore(self._directory)
        base = postgres_base_url()
        if base is None:
            pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
        return PostgresStore(base)

    def close(self) -> None:
        for baseline in self._made.values():
            baseline.store.close()


@pytest.fixture(scope="session")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baselines]:
    made = Baselines(tmp_path_factory.mktemp("reliability"))
    yield made
    made.close()


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the test's backend (a fresh PostgreSQL database of its own)."""
    base = postgres_base_url()
    if backend == "postgresql" and base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    with empty_database(backend, tmp_path, base) as url:
        yield url
