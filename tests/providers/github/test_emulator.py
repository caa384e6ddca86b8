"""The emulator behaves like GitHub where Setpoint can notice, and its `/__emulator`
controls work over HTTP for tests that run it as a separate process."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from providers.github.emulator import EmulatorState, create_app
from providers.github.oidc import OidcVerifier


@pytest.fixture
async def http(github_emulator: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=github_emulator),
        base_url="http://127.0.0.1:3001",
        headers={"Authorization": "token anything"},
    ) as client:
        yield client


def test_create_app_has_the_signature_the_cli_calls() -> None:
    assert next(iter(inspect.signature(create_app).parameters)) == "seed"
    assert isinstance(create_app(seed=5), FastAPI)


async def test_a_request_without_a_token_is_anonymous_as_on_github(
    github_emulator: FastAPI,
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=github_emulator), base_url="http://gh"
    ) as anonymous:
        limits = await anonymous.get("/rate_limit")
        pulls = await anonymous.get("/repos/acme/shop/pulls")
        user = await anonymous.get("/user")
        runners = await anonymous.get("/orgs/acme/actions/runners")
    assert limits.status_code == 200
    assert (
        limits.json()["rate"]["limit"] == 60 and limits.json()["resources"]["core"]["limit"] == 60
    )
    assert pulls.status_code != 401 and pulls.headers["x-ratelimit-limit"] == "60"
    for needs_a_user in (user, runners):
        assert needs_a_user.status_code == 401
        assert needs_a_user.json()["message"] == "Requires authentication"
        assert "documentation_url" in needs_a_user.json()


async def test_a_bad_token_is_a_401_even_for_rate_limit() -> None:
    app = create_app(seed=1, accepted_tokens={"good"})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gh"
    ) as client:
        bad = await client.get("/rate_limit", headers={"Authorization": "Bearer nope"})
        good = await client.get("/rate_limit", headers={"Authorization": "Bearer good"})
    assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
    assert good.status_code == 200 and good.json()["rate"]["limit"] == 5000


async def test_only_configured_tokens_are_accepted() -> None:
    app = create_app(seed=1, accepted_tokens={"good"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gh") as client:
        bad = await client.get("/user", headers={"Authorization": "Bearer nope"})
        good = await client.get("/user", headers={"Authorization": "Bearer good"})
    assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
    assert good.status_code == 200


async def test_same_seed_gives_the_same_ids_and_shas() -> None:
    first, second = EmulatorState(11), EmulatorState(11)
    a, b = first.open_pull("acme", "shop"), second.open_pull("acme", "shop")
    assert (a.id, a.head_sha) == (b.id, b.head_sha)


async def test_pull_requests_can_be_driven_over_http(
    http: httpx.AsyncClient, github_state: EmulatorState
) -> None:
    opened = await http.post(
        "/__emulator/repos/acme/shop/pulls", json={"title": "Add cart", "labels": ["preview"]}
    )
    number = opened.json()["number"]
    await http.post(f"/__emulator/repos/acme/shop/pulls/{number}/push", json={})
    await http.post(f"/__emulator/repos/acme/shop/pulls/{number}/labels", json={"labels": []})
    listed = (await http.get("/repos/acme/shop/pulls")).json()
    assert listed[0]["labels"] == []
    assert listed[0]["head"]["sha"] != opened.json()["head_sha"]

    await http.post(f"/__emulator/repos/acme/shop/pulls/{number}/close", json={"merged": True})
    assert (await http.get("/repos/acme/shop/pulls")).json() == []
    closed = (await http.get(f"/repos/acme/shop/pulls/{number}")).json()
    assert (closed["state"], closed["merged"]) == ("closed", True)


async def test_runners_and_faults_can_be_driven_over_http(http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/__emulator/runners", json={"scope": "acme", "name": "r1", "busy": True}
    )
    runner_id = created.json()["id"]
    refused = await http.delete(f"/orgs/acme/actions/runners/{runner_id}")
    await http.patch(f"/__emulator/runners/{runner_id}", json={"busy": False})
    deleted = await http.delete(f"/orgs/acme/actions/runners/{runner_id}")
    assert (refused.status_code, deleted.status_code) == (422, 204)

    await http.post(
        "/__emulator/faults",
        json={"kind": "error", "status": 503, "method": "GET", "path": "/orgs/*", "times": 1},
    )
    failing = await http.get("/orgs/acme/actions/runners")
    healthy = await http.get("/orgs/acme/actions/runners")
    assert (failing.status_code, healthy.status_code) == (503, 200)
    unknown = await http.post("/__emulator/faults", json={"kind": "meteor"})
    assert unknown.status_code == 400


async def test_rate_limit_headers_count_down_and_refuse_at_zero(
    http: httpx.AsyncClient,
) -> None:
    await http.put("/__emulator/rate-limit", json={"remaining": 2, "limit": 10})
    first = await http.get("/user")
    second = await http.get("/user")
    third = await http.get("/user")
    assert [r.headers["x-ratelimit-remaining"] for r in (first, second)] == ["1", "0"]
    assert third.status_code == 403
    assert third.headers["x-ratelimit-remaining"] == "0"
    assert int(third.headers["x-ratelimit-reset"]) > 0


async def test_a_token_minted_over_http_verifies_against_the_served_jwks(
    http: httpx.AsyncClient,
) -> None:
    minted = await http.post(
        "/__emulator/oidc/token", json={"claims": {"repository": "acme/api"}, "ttl_seconds": 60}
    )
    verifier = OidcVerifier("http://127.0.0.1:3001", "setpoint", http=http)
    identity = await verifier.verify(minted.json()["token"])
    assert identity.repository == "acme/api"


async def test_creating_a_jit_runner_twice_with_one_name_conflicts(
    http: httpx.AsyncClient, github_state: EmulatorState
) -> None:
    github_state.add_repo("acme", "shop")
    body = {"name": "jit-1", "runner_group_id": 1, "labels": ["setpoint"]}
    path = "/repos/acme/shop/actions/runners/generate-jitconfig"
    first = await http.post(path, json=body)
    second = await http.post(path, json=body)
    assert (first.status_code, second.status_code) == (201, 409)
    assert first.json()["runner"]["status"] == "offline"
