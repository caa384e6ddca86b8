"""GitHub's token-permission model in the emulator, and the client naming each refusal for
what it is: a permission the token lacks (403), a repository it may not see (404), a bad
token (401, with rate-limit headers); `/rate_limit` costs nothing. None is retried."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator.permissions import NOT_ACCESSIBLE
from providers.github.errors import GitHubForbidden, GitHubNotFound, GitHubUnauthorized
from providers.github.models import RunnerScope
from tests.providers.github.conftest import API_URL, TOKEN


def _raw(app: FastAPI, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=API_URL, headers=headers
    )


async def test_a_token_without_the_permission_gets_403_and_is_not_retried(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    github_state.open_pull("acme", "shop")
    github_state.grant(TOKEN, {"pull_requests": "read"}, ["acme/shop"])
    assert len(await github_client.list_open_pulls("acme", "shop")) == 1
    with pytest.raises(GitHubForbidden) as caught:
        await github_client.upsert_marker_comment("acme", "shop", 1, "m", "hello")
    assert caught.value.status == 403
    assert NOT_ACCESSIBLE in caught.value.message
    assert caught.value.accepted_permissions == "issues=write, pull_requests=write"
    with pytest.raises(GitHubForbidden) as runners:
        await github_client.list_runners(RunnerScope.parse("acme/shop"))
    assert runners.value.accepted_permissions == "administration=read"
    posts = [r for r in github_state.requests if r[0] == "POST"]
    assert len(posts) == 1  # one refusal, no retry


async def test_a_private_repository_the_token_was_not_given_is_not_found(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    github_state.open_pull("acme", "secret")
    github_state.set_visibility("acme", "open", private=False)
    github_state.open_pull("acme", "open")
    github_state.grant(TOKEN, {"pull_requests": "write", "issues": "write"}, ["acme/shop"])
    with pytest.raises(GitHubNotFound):
        await github_client.list_open_pulls("acme", "secret")
    # A public repository is anyone's to read, but not to write to.
    assert len(await github_client.list_open_pulls("acme", "open")) == 1
    with pytest.raises(GitHubForbidden):
        await github_client.upsert_marker_comment("acme", "open", 1, "m", "hello")


async def test_anonymous_reads_of_a_private_repository_answer_404(
    github_emulator: FastAPI, github_state: EmulatorState
) -> None:
    github_state.open_pull("acme", "secret")
    github_state.set_visibility("acme", "open", private=False)
    async with _raw(github_emulator, token=None) as http:
        assert (await http.get("/repos/acme/secret/pulls")).status_code == 404
        assert (await http.get("/repos/acme/open/pulls")).status_code == 200


async def test_rate_limit_is_free_and_401s_carry_rate_limit_headers(
    github_emulator: FastAPI, github_state: EmulatorState
) -> None:
    async with _raw(github_emulator) as http:
        first = (await http.get("/rate_limit")).json()["rate"]["remaining"]
        again = (await http.get("/rate_limit")).json()["rate"]["remaining"]
    assert first == again == github_state.budget.limit
    github_state.accepted_tokens = {"another-token"}
    async with _raw(github_emulator) as http:
        refused = await http.get("/repos/acme/shop/pulls")
    assert refused.status_code == 401
    assert refused.headers["x-ratelimit-limit"] == "60"
    assert "x-ratelimit-remaining" in refused.headers


async def test_a_bad_token_is_unauthorized_with_the_budget_read(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    github_state.accepted_tokens = {"another-token"}
    with pytest.raises(GitHubUnauthorized):
        await github_client.list_open_pulls("acme", "shop")
    assert github_client.rate_limit is not None and github_client.rate_limit.limit == 60


async def test_grants_and_visibility_can_be_set_over_http(
    github_emulator: FastAPI, github_state: EmulatorState
) -> None:
    async with _raw(github_emulator) as http:
        granted = await http.post(
            "/__emulator/grants",
            json={"token": TOKEN, "permissions": {"deployments": "read"}, "repositories": None},
        )
        assert granted.json() == {"permissions": {"deployments": "read"}, "repositories": None}
        shown = await http.put("/__emulator/repos/acme/shop/visibility", json={"private": False})
        assert shown.json() == {"full_name": "acme/shop", "private": False}
        refused = await http.get("/repos/acme/shop/pulls")
    assert refused.status_code == 403
    assert refused.headers["x-accepted-github-permissions"] == "pull_requests=read"
    assert github_state.repos["acme/shop"].private is False
