"""Every Dokploy procedure the reconciler calls, under each fault: once the fault clears,
the fleet converges with no duplicate, nothing deleted that should stay, and an audit chain
that verifies (see matrix.py for the scenario).

CI runs each procedure under one fault on SQLite and every other one under another fault on
PostgreSQL; SETPOINT_RELIABILITY_FULL=1 runs all five on each.
"""

from __future__ import annotations

import json
from functools import partial

import anyio
import pytest

from tests.reliability.checks import no_secret
from tests.reliability.conftest import Baselines, recorded_procedures
from tests.reliability.fleets import SECRET_VALUES
from tests.reliability.matrix import (
    KNOWN_BUGS,
    Case,
    case_id,
    ci_sample,
    full_matrix,
    run_case,
    run_unowned_listing_case,
)
from tests.support.backends import BACKENDS, backend_marks, full_size


def _cases(backend: str, offset: int) -> list[object]:
    procedures = recorded_procedures()
    cases = full_matrix(procedures) if full_size() else ci_sample(procedures, offset)
    params: list[object] = []
    for case in cases:
        marks = backend_marks(backend)
        known = KNOWN_BUGS.get((case[0].name, case[1]))
        if known is not None:
            marks.append(pytest.mark.xfail(strict=True, reason=known))
        params.append(pytest.param(backend, case, id=f"{backend}-{case_id(case)}", marks=marks))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        params = [p for offset, b in enumerate(BACKENDS) for p in _cases(b, offset)]
        metafunc.parametrize(("backend", "case"), params)


def test_fault_then_recovery(backend: str, case: Case, baselines: Baselines) -> None:
    procedure, fault = case
    result = anyio.run(run_case, baselines.get(backend), procedure, fault)
    print(
        f"{procedure.name} x {fault}: under fault {result.during}; "
        f"converged after {result.rounds} round(s) in {result.seconds:.2f}s"
    )
    assert result.ok, "\n".join(result.problems)


def test_the_recorded_procedures_cover_every_kind_of_change() -> None:
    """Guards the scenario: if AFTER stopped exercising a write, the matrix would shrink
    silently (the matrix itself takes its list from the recording, not from here)."""
    recorded = {p.name for p in recorded_procedures()}
    for family in ("application", "compose"):
        assert {f"{family}.create", f"{family}.delete", f"{family}.deploy"} <= recorded
        assert {f"{family}.saveEnvironment", f"{family}.one"} <= recorded
    assert {"project.create", "environment.create", "project.all", "user.get"} <= recorded
    assert {"domain.create", "domain.update", "domain.delete"} <= recorded
    assert {"application.saveDockerProvider", "application.update", "compose.update"} <= recorded
    assert {"deployment.all", "deployment.allByCompose"} <= recorded


def test_an_empty_project_listing_before_anything_is_owned_makes_no_duplicate(
    database_url: str,
) -> None:
    result = anyio.run(run_unowned_listing_case, database_url)
    assert result.ok, "\n".join(result.problems)


def test_a_service_an_empty_listing_hid_is_left_for_adoption_not_made_twice(
    database_url: str,
) -> None:
    """The hand-made project also holds the lane's service: the apply finds the project and
    its environment by name, and must not trust the plan's "no such service" for an
    environment the plan never saw. The service stays unowned: the lane waits for `setpoint
    adopt`, as for any service of its name Setpoint did not make."""
    result = anyio.run(partial(run_unowned_listing_case, database_url, with_service=True))
    assert not [p for p in result.problems if p.startswith("duplicate")], result.problems
    [left] = [p for p in result.problems if p.startswith("not converged")]
    assert "not_owned (product:beta/testing)" in left, left


def test_the_secret_scan_sees_the_fleet_secret() -> None:
    """The matrix's 'no secret in the output' check is only as good as its scan."""
    secret = SECRET_VALUES[0]
    assert no_secret([f"env saved: DATABASE_URL={secret}"], SECRET_VALUES)
    assert no_secret([json.dumps({"env": f"X={secret}"})], SECRET_VALUES)
    assert not no_secret(["env saved (2 managed key(s); values not shown)"], SECRET_VALUES)
