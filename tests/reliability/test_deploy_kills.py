"""SIGKILL a real `setpoint apply` while the deploys it asked for are queued or building in
Dokploy; the next plans and applies converge and no service is deployed twice (see
deploy_kills.py). CI kills once per backend; SETPOINT_RELIABILITY_FULL=1 at every deploy of
the plan at both moments, with one and with four deploys in the server's queue (32 kills
per backend).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.deploy_kills import DeployKill, deploy_kills, run_deploy_kill
from tests.support.backends import by_backend, full_size

pytestmark = pytest.mark.e2e


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kill" in metafunc.fixturenames:
        params = by_backend(
            lambda offset: deploy_kills(full=full_size(), offset=offset), lambda kill: kill.label
        )
        metafunc.parametrize(("backend", "kill"), params)


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
