"""SIGKILL a real `setpoint apply` at an action boundary of a ~50-action plan; the next plan
and apply converge with no manual step, no duplicate and a chain that verifies (see
crash.py). CI kills at three points over both backends; SETPOINT_RELIABILITY_FULL=1 at every
boundary (one action at a time) and at every fourth one of the parallel apply, each at both
moments: the intent committed, and the write done but unanswered.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from tests.reliability.crash import Point, plan_size, points, run_crash_point
from tests.support.backends import by_backend, full_size

pytestmark = pytest.mark.e2e


@cache
def _actions() -> int:
    return plan_size()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "point" in metafunc.fixturenames:
        params = by_backend(
            lambda offset: points(_actions(), full=full_size(), offset=offset),
            lambda point: point.label,
        )
        metafunc.parametrize(("backend", "point"), params)


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
