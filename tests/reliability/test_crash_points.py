"""SIGKILL a real `setpoint apply` at an action boundary of a ~50-action plan; the next plan
and apply converge with no manual step, no duplicate and a chain that verifies (see
crash.py). CI kills at three points over both backends; SETPOINT_RELIABILITY_FULL=1 at every
boundary (one action at a time) and at every fourth one of the parallel apply, each at both
moments: the intent committed, and the write done but unanswered.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.databases import postgres_base_url
from tests.reliability.conftest import BACKENDS, backend_marks, full_size
from tests.reliability.crash import Point, plan_size, points, run_crash_point
from tests.reliability.stores import empty_database

pytestmark = pytest.mark.e2e


@cache
def _actions() -> int:
    return plan_size()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "point" not in metafunc.fixturenames:
        return
    params = [
        pytest.param(backend, point, id=f"{backend}-{point.label}", marks=backend_marks(backend))
        for offset, backend in enumerate(BACKENDS)
        for point in points(_actions(), full=full_size(), offset=offset)
    ]
    metafunc.parametrize(("backend", "point"), params)


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    base = postgres_base_url()
    if backend == "postgresql" and base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    with empty_database(backend, tmp_path, base) as url:
        yield url


def test_sigkill_at_a_boundary_then_the_next_plan_and_apply_converge(
    database: str, point: Point, tmp_path: Path
) -> None:
    result = run_crash_point(database, point, tmp_path)
    print(
        f"killed {point.label} of {result.actions}: {result.intents} intents and "
        f"{result.results} results were durable; recovered in {result.rounds} apply, "
        f"{result.seconds:.2f}s, {result.reclaimed} reclaimed"
    )
    assert result.ok, "\n".join(result.problems)
    assert result.duplicates == 0
    assert result.rounds == 1  # the next plan and its apply: nothing more
    assert result.seconds < 60  # a generous bound; the tables report the real figure
