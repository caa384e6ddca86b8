"""SIGKILL a real `setpoint apply` while the deploys it asked for are queued or building in
Dokploy; the next plans and applies converge and no service is deployed twice (see
deploy_kills.py). CI kills once per backend; SETPOINT_RELIABILITY_FULL=1 at every deploy of
the plan at both moments, with one and with four deploys in the server's queue (32 kills
per backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import postgres_base_url
from tests.reliability.conftest import BACKENDS, backend_marks, full_size
from tests.reliability.deploy_kills import DeployKill, deploy_kills, run_deploy_kill
from tests.reliability.stores import empty_database

pytestmark = pytest.mark.e2e


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kill" not in metafunc.fixturenames:
        return
    params = [
        pytest.param(backend, kill, id=f"{backend}-{kill.label}", marks=backend_marks(backend))
        for offset, backend in enumerate(BACKENDS)
        for kill in deploy_kills(full=full_size(), offset=offset)
    ]
    metafunc.parametrize(("backend", "kill"), params)


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    base = postgres_base_url()
    if backend == "postgresql" and base is None:
        pytest.skip("SETPOINT_TEST_DATABASE_URL is not set")
    with empty_database(backend, tmp_path, base) as url:
        yield url


def test_sigkill_in_the_deploy_wait_then_no_service_is_deployed_twice(
    database: str, kill: DeployKill, tmp_path: Path
) -> None:
    result = run_deploy_kill(database, kill, tmp_path)
    print(
        f"killed at {kill.label}: {result.queued} queued and {result.building} building; "
        f"recovered in {result.rounds} apply(s), {result.seconds:.2f}s"
    )
    assert result.ok, "\n".join([*result.problems, *result.deployed_twice])
    assert result.deployed_twice == ()
    assert result.seconds < 60
