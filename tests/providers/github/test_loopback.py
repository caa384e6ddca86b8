"""The GitHub emulator over real loopback HTTP, as the CLI serves it to a user's setup."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from providers.github.client import GitHubClient
from providers.github.emulator import create_app
from providers.github.emulator.state import EmulatorState
from providers.github.oidc import OidcVerifier
from reconciler.demo.loopback import free_port, serve, serve_command

pytestmark = pytest.mark.e2e


@pytest.fixture
def served() -> Iterator[tuple[str, EmulatorState]]:
    app = create_app(seed=5)
    state: EmulatorState = app.state.emulator
    with serve(app) as url:
        yield url, state


async def test_client_pages_pull_requests_over_loopback(served: tuple[str, EmulatorState]) -> None:
    url, state = served
    for number in range(1, 121):
        state.open_pull("acme", "shop", labels=["preview"] if number % 2 else [])
    async with GitHubClient(url, "loopback-token", timeout=5) as client:
        pulls = await client.list_open_pulls("acme", "shop")
    assert [p.number for p in pulls] == list(range(1, 121))
    assert sum("preview" in p.labels for p in pulls) == 60


async def test_oidc_token_verifies_against_the_served_jwks(
    served: tuple[str, EmulatorState],
) -> None:
    url, state = served
    token = state.mint_oidc_token({"aud": "setpoint", "iss": url, "repository": "acme/shop"})
    async with httpx.AsyncClient(timeout=5) as http:
        verifier = OidcVerifier(url, "setpoint", http=http)
        identity = await verifier.verify(token)
    assert identity.repository == "acme/shop"


def test_cli_command_serves_the_emulator_on_loopback() -> None:
    port = free_port()
    args = ("emulator", "github", "--port", str(port), "--seed", "2")
    with serve_command(args, ready_path="/rate_limit", port=port) as url:
        discovery = httpx.get(f"{url}/.well-known/openid-configuration", timeout=5).json()
        assert discovery["jwks_uri"] == f"{url}/.well-known/jwks"
        limits = httpx.get(f"{url}/rate_limit", headers={"Authorization": "Bearer t"}, timeout=5)
        assert limits.status_code == 200 and "x-ratelimit-remaining" in limits.headers
