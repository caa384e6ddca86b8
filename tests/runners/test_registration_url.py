"""A runner registered with a registration token is pointed at the GitHub Setpoint is
configured for (GitHub Enterprise Server too), not at github.com; its env reaches the
container as written."""

from __future__ import annotations

import pytest

from providers.dokploy.envfile import parse
from providers.github.config import web_url_for
from providers.hosts.base import RunnerLaunch
from providers.hosts.dokploy_container import runner_env
from reconciler.secret_values import SecretValue
from tests.runners.conftest import Rig, outcomes


@pytest.mark.parametrize(
    ("api_url", "web_url"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
    ],
)
def test_the_web_address_comes_from_the_api_url(api_url: str, web_url: str) -> None:
    assert web_url_for(api_url) == web_url


async def test_a_token_registered_runner_uses_the_configured_github(rig: Rig) -> None:
    rig.github.faults.add(
        "error",
        method="POST",
        path="/repos/acme/shop/actions/runners/generate-jitconfig",
        status=404,
    )
    rig.declare(count=(1, 1))
    assert outcomes(await rig.reconcile()) == {"runner:ci/1": "applied"}
    (env,) = [row["env"] for row in rig.dokploy.state.applications.values()]
    assert parse(env)["ACTIONS_RUNNER_INPUT_URL"] == f"{rig.github_url}/acme/shop"
    assert rig.runners()["setpoint-ci-1"].status == "online"


def test_runner_env_reaches_the_container_as_written() -> None:
    launch = RunnerLaunch(
        name="setpoint-ci-1",
        lane="runner:ci/1",
        pool="ci",
        image="ghcr.io/actions/actions-runner:2.321.0",
        labels=("setpoint-managed", "gpu #2", "'quoted'"),
        github_url="https://ghe.example.com/acme/shop",
        registration=SecretValue("reg-token"),
        jit=False,
    )
    values = parse(runner_env(launch))
    assert values["ACTIONS_RUNNER_INPUT_LABELS"] == "setpoint-managed,gpu #2,'quoted'"
    assert values["ACTIONS_RUNNER_INPUT_URL"] == "https://ghe.example.com/acme/shop"
