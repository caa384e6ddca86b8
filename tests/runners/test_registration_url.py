"""A runner registered with a registration token is pointed at the GitHub Setpoint is
configured for (GitHub Enterprise Server too), not at github.com."""

from __future__ import annotations

import pytest

from providers.dokploy.envfile import parse
from providers.github.config import web_url_for
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
