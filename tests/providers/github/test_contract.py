"""The client and the emulator agree with GitHub's REST description (and its webhook
payload schemas): every request body, every 2xx body and every documented error body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.errors import GitHubNotFound, RunnerBusy
from providers.github.models import RunnerScope
from tests.providers.github.contract import (
    ContractRecorder,
    Exchange,
    check_exchange,
    schema_errors,
)


async def _exercise_everything(gh: GitHubClient, state: EmulatorState) -> None:
    state.open_pull("acme", "shop", labels=["preview"])
    pr = state.open_pull("acme", "shop", labels=["preview", "big"])
    await gh.list_open_pulls("acme", "shop")
    await gh.get_pull("acme", "shop", pr.number)
    await gh.upsert_marker_comment("acme", "shop", pr.number, "<!-- m -->", "one")
    await gh.upsert_marker_comment("acme", "shop", pr.number, "<!-- m -->", "two")
    deployment = await gh.create_deployment(
        "acme", "shop", pr.head_ref, "shop-pr-2", description="preview", payload={"lane": "x"}
    )
    await gh.create_deployment_status(
        "acme",
        "shop",
        deployment.id,
        "success",
        environment_url="https://pr-2.example.test",
        log_url="https://setpoint.example.test/ops/1",
        description="ready",
    )
    await gh.list_deployments("acme", "shop", environment="shop-pr-2")
    await gh.list_deployment_statuses("acme", "shop", deployment.id)
    for scope in (RunnerScope.for_repo("acme", "shop"), RunnerScope.for_org("acme")):
        busy = state.add_runner(str(scope), "busy-1", busy=True)
        await gh.list_runners(scope)
        await gh.get_runner(scope, busy.id)
        with pytest.raises(RunnerBusy):
            await gh.delete_runner(scope, busy.id)
        await gh.create_registration_token(scope)
        await gh.create_remove_token(scope)
        jit = await gh.generate_jit_config(scope, f"jit-{scope.kind}", 1, ["setpoint"])
        await gh.add_runner_labels(scope, jit.runner.id, ["gpu"])
        await gh.list_runner_labels(scope, jit.runner.id)
        await gh.set_runner_labels(scope, jit.runner.id, ["a", "b"])
        await gh.remove_runner_label(scope, jit.runner.id, "a")
        await gh.delete_runner(scope, jit.runner.id)
        with pytest.raises(GitHubNotFound):
            await gh.get_runner(scope, jit.runner.id)


async def test_every_client_call_matches_the_rest_description(
    github_client: GitHubClient, github_state: EmulatorState, contract_recorder: ContractRecorder
) -> None:
    await _exercise_everything(github_client, github_state)

    assert contract_recorder.violations() == []
    expected = {
        "pulls/list",
        "pulls/get",
        "issues/list-comments",
        "issues/create-comment",
        "issues/update-comment",
        "repos/create-deployment",
        "repos/create-deployment-status",
        "repos/list-deployments",
        "repos/list-deployment-statuses",
    }
    for scope in ("repo", "org"):
        expected |= {
            f"actions/list-self-hosted-runners-for-{scope}",
            f"actions/get-self-hosted-runner-for-{scope}",
            f"actions/delete-self-hosted-runner-from-{scope}",
            f"actions/create-registration-token-for-{scope}",
            f"actions/create-remove-token-for-{scope}",
            f"actions/generate-runner-jitconfig-for-{scope}",
            f"actions/add-custom-labels-to-self-hosted-runner-for-{scope}",
            f"actions/list-labels-for-self-hosted-runner-for-{scope}",
            f"actions/set-custom-labels-for-self-hosted-runner-for-{scope}",
            f"actions/remove-custom-label-from-self-hosted-runner-for-{scope}",
        }
    assert expected <= contract_recorder.covered()
    # the busy-runner 422 was checked against validation_failed_simple too
    assert any(e.status == 422 for e in contract_recorder.exchanges)


async def test_user_and_rate_limit_routes_match_the_description(
    github_emulator: Any, contract_recorder: ContractRecorder
) -> None:
    async with httpx.AsyncClient(transport=contract_recorder, base_url="http://gh.test") as http:
        for path in ("/user", "/rate_limit"):
            response = await http.get(path, headers={"Authorization": "Bearer x"})
            assert response.status_code == 200
    assert contract_recorder.violations() == []


def test_the_checker_catches_a_response_that_breaks_the_contract() -> None:
    broken_runner = {"id": 1, "name": "r", "os": "Linux", "status": "online", "labels": []}
    problems = check_exchange(
        Exchange("GET", "/repos/a/b/actions/runners/1", None, 200, broken_runner)
    )
    assert any("'busy' is a required property" in p for p in problems)


def test_the_checker_catches_a_request_body_that_breaks_the_contract() -> None:
    problems = check_exchange(
        Exchange("POST", "/repos/a/b/actions/runners/generate-jitconfig", {"name": "x"}, 404, None)
    )
    assert any("'runner_group_id' is a required property" in p for p in problems)


def test_the_checker_refuses_calls_outside_the_description() -> None:
    problems = check_exchange(Exchange("DELETE", "/repos/a/b", None, 204, None))
    assert problems and "not an operation" in problems[0]


@pytest.mark.parametrize(
    "action", ["opened", "synchronize", "labeled", "unlabeled", "closed", "reopened"]
)
def test_webhook_payloads_match_githubs_schemas(github_state: EmulatorState, action: str) -> None:
    pr = github_state.open_pull("acme", "shop", labels=["preview"])
    extra: dict[str, Any] = {}
    if action in ("labeled", "unlabeled"):
        extra["label"] = "preview"
    if action == "synchronize":
        before, after = github_state.push("acme", "shop", pr.number)
        extra |= {"before": before, "after": after}
    if action == "closed":
        github_state.close_pull("acme", "shop", pr.number, merged=True)
    payload = github_state.pull_request_event("acme", "shop", pr.number, action, **extra)

    assert schema_errors(payload, f"webhook-pull-request-{action}") == []
    assert payload["pull_request"]["head"]["sha"] == github_state.pull("acme", "shop", 1).head_sha


def test_the_webhook_schema_check_can_fail(github_state: EmulatorState) -> None:
    pr = github_state.open_pull("acme", "shop")
    payload = github_state.pull_request_event("acme", "shop", pr.number, "opened")
    del payload["pull_request"]["head"]
    assert schema_errors(payload, "webhook-pull-request-opened") != []
