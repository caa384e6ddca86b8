"""What the reconciler relies on from the GitHub client, against the emulator."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from providers.github.client import GitHubClient
from providers.github.config import GitHubConfig
from providers.github.emulator import EmulatorState
from providers.github.errors import (
    GitHubError,
    GitHubNotFound,
    GitHubTimeout,
    GitHubTransientError,
    GitHubUnauthorized,
    RunnerBusy,
)
from providers.github.models import RunnerScope
from tests.providers.github.conftest import API_URL, TOKEN

MARKER = "<!-- setpoint:preview shop -->"


async def test_open_pulls_are_read_across_every_page_with_labels_and_head_sha(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    for n in range(1, 251):
        github_state.open_pull("acme", "shop", labels=["preview"] if n % 3 == 0 else [])
    github_state.close_pull("acme", "shop", 5)

    pulls = await github_client.list_open_pulls("acme", "shop")

    assert len(pulls) == 249  # three pages of 100, the closed one left out
    assert 5 not in {p.number for p in pulls}
    third = next(p for p in pulls if p.number == 3)
    assert third.labels == ["preview"]
    assert third.head_sha == github_state.pull("acme", "shop", 3).head_sha
    list_calls = [r for r in github_state.requests if r[1] == "/repos/acme/shop/pulls"]
    assert len(list_calls) == 3


async def test_one_pull_shows_a_new_head_sha_and_labels(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    pr = github_state.open_pull("acme", "shop", labels=["preview"])
    _, after = github_state.push("acme", "shop", pr.number)
    github_state.set_labels("acme", "shop", pr.number, ["preview", "keep"])

    got = await github_client.get_pull("acme", "shop", pr.number)

    assert (got.head_sha, got.labels, got.state) == (after, ["preview", "keep"], "open")


async def test_a_missing_pull_is_not_found(github_client: GitHubClient) -> None:
    with pytest.raises(GitHubNotFound):
        await github_client.get_pull("acme", "nothing", 1)


async def test_marker_comment_is_created_then_left_alone_then_updated(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    pr = github_state.open_pull("acme", "shop")

    first = await github_client.upsert_marker_comment("acme", "shop", pr.number, MARKER, "v1")
    writes_before = _writes(github_state)
    again = await github_client.upsert_marker_comment("acme", "shop", pr.number, MARKER, "v1")
    unchanged_writes = _writes(github_state) - writes_before
    changed = await github_client.upsert_marker_comment("acme", "shop", pr.number, MARKER, "v2")

    assert (first.action, again.action, changed.action) == ("created", "unchanged", "updated")
    assert unchanged_writes == 0
    assert first.comment_id == again.comment_id == changed.comment_id
    (comment,) = github_state.comments_of("acme", "shop", pr.number)
    assert comment.body == f"{MARKER}\nv2"


async def test_marker_comment_on_a_later_page_is_updated_not_duplicated(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    pr = github_state.open_pull("acme", "shop")
    for n in range(120):
        github_state.add_comment("acme", "shop", pr.number, f"chatter {n}", user="dev")
    mine = github_state.add_comment("acme", "shop", pr.number, f"{MARKER}\nold")

    result = await github_client.upsert_marker_comment("acme", "shop", pr.number, MARKER, "new")

    assert (result.action, result.comment_id) == ("updated", mine.id)
    assert len(github_state.comments_of("acme", "shop", pr.number)) == 121


def _writes(state: EmulatorState) -> int:
    return sum(1 for method, _ in state.requests if method != "GET")


async def test_preview_deployment_shows_its_url(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    pr = github_state.open_pull("acme", "shop")
    deployment = await github_client.create_deployment(
        "acme", "shop", pr.head_ref, "shop-pr-1", description="Preview of #1"
    )
    status = await github_client.create_deployment_status(
        "acme", "shop", deployment.id, "success", environment_url="https://pr-1.shop.test"
    )

    stored = github_state.deployments[deployment.id]
    assert (stored.sha, stored.transient, stored.production) == (pr.head_sha, True, False)
    assert stored.statuses[-1].environment_url == "https://pr-1.shop.test"
    assert status.environment_url == "https://pr-1.shop.test"
    listed = await github_client.list_deployments("acme", "shop", environment="shop-pr-1")
    assert [d.id for d in listed] == [deployment.id]


@pytest.mark.parametrize("transient", [False, True])
async def test_auto_inactive_leaves_transient_deployments_as_the_rest_description_says(
    github_client: GitHubClient, github_state: EmulatorState, transient: bool
) -> None:
    # `auto_inactive`: "Adds a new `inactive` status to all prior non-transient,
    # non-production environment deployments with the same repository and `environment`".
    pr = github_state.open_pull("acme", "shop")
    ids = []
    for _ in range(2):
        deployment = await github_client.create_deployment(
            "acme", "shop", pr.head_sha, "shop-pr-1", transient=transient
        )
        await github_client.create_deployment_status("acme", "shop", deployment.id, "success")
        ids.append(deployment.id)
    earlier = await github_client.list_deployment_statuses("acme", "shop", ids[0])
    newer = await github_client.list_deployment_statuses("acme", "shop", ids[1])
    assert [s.state for s in earlier] == (["success"] if transient else ["inactive", "success"])
    assert [s.state for s in newer] == ["success"]


async def test_deleting_a_busy_runner_is_a_typed_refusal_and_the_runner_stays(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    scope = RunnerScope.parse("acme")
    runner = github_state.add_runner("acme", "ci-1", busy=True)

    with pytest.raises(RunnerBusy) as refused:
        await github_client.delete_runner(scope, runner.id)
    assert refused.value.runner_id == runner.id
    assert runner.id in github_state.runners

    github_state.set_runner(runner.id, busy=False)
    await github_client.delete_runner(scope, runner.id)
    assert runner.id not in github_state.runners


async def test_runners_report_online_offline_busy_and_labels(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    github_state.add_runner("acme/shop", "a", labels=["setpoint-managed"])
    github_state.add_runner("acme/shop", "b", status="offline")
    github_state.add_runner("acme", "org-runner")  # other scope, not listed

    runners = await github_client.list_runners(RunnerScope.for_repo("acme", "shop"))

    assert [(r.name, r.online, r.busy) for r in runners] == [
        ("a", True, False),
        ("b", False, False),
    ]
    assert "setpoint-managed" in runners[0].label_names


async def test_tokens_never_show_in_reprs_or_logs(
    github_client: GitHubClient, github_state: EmulatorState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scope = RunnerScope.for_repo("acme", "shop")
    github_state.add_repo("acme", "shop")
    registration = await github_client.create_registration_token(scope)
    jit = await github_client.generate_jit_config(scope, "jit", 1, ["x"])

    shown = " ".join([repr(github_client), repr(registration), repr(jit), str(jit), caplog.text])
    for secret in (
        TOKEN,
        registration.token.get_secret_value(),
        jit.encoded_jit_config.get_secret_value(),
    ):
        assert secret not in shown
    assert registration.token.get_secret_value() in github_state.issued_runner_tokens


async def test_api_version_and_auth_headers_are_sent(github_emulator: FastAPI) -> None:
    seen: list[httpx.Request] = []
    inner = httpx.ASGITransport(app=github_emulator)

    async def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return await inner.handle_async_request(request)

    github_emulator.state.emulator.add_repo("acme", "shop")
    async with GitHubClient(API_URL, TOKEN, transport=httpx.MockTransport(spy)) as gh:
        await gh.list_open_pulls("acme", "shop")
    assert seen[0].headers["x-github-api-version"] == "2022-11-28"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_bad_credentials_are_a_typed_error_and_not_retried(
    github_emulator: FastAPI,
) -> None:
    state: EmulatorState = github_emulator.state.emulator
    state.accepted_tokens = {"the-right-one"}
    transport = httpx.ASGITransport(app=github_emulator)
    async with GitHubClient(API_URL, "wrong", transport=transport) as gh:
        with pytest.raises(GitHubUnauthorized, match="Bad credentials"):
            await gh.list_runners(RunnerScope.for_org("acme"))


async def test_a_transient_error_on_a_read_is_retried(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    github_state.add_repo("acme", "shop")
    github_state.faults.add("error", path="/repos/acme/shop/pulls", status=502, times=2)

    assert await github_client.list_open_pulls("acme", "shop") == []
    assert len([r for r in github_state.requests if r[1] == "/repos/acme/shop/pulls"]) == 3


async def test_a_create_that_failed_after_reaching_github_is_not_repeated(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    pr = github_state.open_pull("acme", "shop")
    github_state.faults.add("error", method="POST", path="*/comments", status=500, times=1)

    with pytest.raises(GitHubTransientError):
        await github_client.upsert_marker_comment("acme", "shop", pr.number, MARKER, "x")
    assert [m for m, p in github_state.requests if p.endswith("/comments")] == ["GET", "POST"]


async def test_a_create_that_never_reached_github_is_retried() -> None:
    attempts: list[str] = []

    async def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        if len(attempts) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"token": "t", "expires_at": "2030-01-01T00:00:00Z"})

    async with GitHubClient(
        API_URL, TOKEN, transport=httpx.MockTransport(flaky), backoff_seconds=0.001
    ) as gh:
        token = await gh.create_registration_token(RunnerScope.for_org("acme"))
    assert attempts == ["POST", "POST"]
    assert token.token.get_secret_value() == "t"


async def test_a_hanging_github_gives_a_timeout_error(github_emulator: FastAPI) -> None:
    state: EmulatorState = github_emulator.state.emulator
    state.add_repo("acme", "shop")
    state.faults.add("timeout", path="/repos/acme/shop/pulls", seconds=5)
    transport = httpx.ASGITransport(app=github_emulator)
    async with GitHubClient(
        API_URL, TOKEN, transport=transport, timeout=0.05, max_attempts=1
    ) as gh:
        with pytest.raises(GitHubTimeout):
            await gh.list_open_pulls("acme", "shop")


async def test_an_empty_list_fault_reads_as_empty_not_as_an_error(
    github_client: GitHubClient, github_state: EmulatorState
) -> None:
    github_state.open_pull("acme", "shop")
    github_state.faults.add("empty_list", path="/repos/acme/shop/pulls", times=1)
    assert await github_client.list_open_pulls("acme", "shop") == []
    assert len(await github_client.list_open_pulls("acme", "shop")) == 1


async def test_a_pagination_link_to_another_host_is_refused() -> None:
    async def evil(request: httpx.Request) -> httpx.Response:
        link = '<https://attacker.example/steal?page=2>; rel="next"'
        return httpx.Response(200, json=[], headers={"Link": link})

    async with GitHubClient(API_URL, TOKEN, transport=httpx.MockTransport(evil)) as gh:
        with pytest.raises(GitHubError, match="leaves the API host"):
            await gh.list_open_pulls("acme", "shop")


def test_names_that_would_reshape_the_url_are_refused() -> None:
    with pytest.raises(ValueError):
        RunnerScope.parse("acme/../../admin")
    assert RunnerScope.parse("acme/shop").runners_path == "/repos/acme/shop/actions/runners"
    assert RunnerScope.parse("acme").runners_path == "/orgs/acme/actions/runners"


async def test_config_comes_from_setpoint_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETPOINT_GITHUB_TOKEN", "ghp_env")
    monkeypatch.setenv("SETPOINT_GITHUB_API_URL", "http://127.0.0.1:3001")
    config = GitHubConfig()
    async with GitHubClient.from_config(config) as client:
        assert config.api_url == "http://127.0.0.1:3001"
        assert "ghp_env" not in repr(config) + repr(client)
