"""Client behaviour: Dokploy's response quirks, typed errors, retries and secrecy."""

from __future__ import annotations

import json
import logging
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from providers.dokploy.client import DokployClient
from providers.dokploy.config import DokployConfig
from providers.dokploy.emulator import Emulator
from providers.dokploy.errors import (
    DokployAccessDenied,
    DokployAddressError,
    DokployConflict,
    DokployConnectError,
    DokployError,
    DokployForbidden,
    DokployNotFound,
    DokployRateLimited,
    DokployTransientError,
    DokployUnauthorized,
    DokployValidationError,
    error_from_response,
)
from providers.dokploy.rpc import normalise_base_url
from providers.http_core import DEFAULT_TIMEOUT_SECONDS, TransientFailure
from tests.providers.dokploy.contract import ContractRecorder, RecordingTransport
from tests.providers.dokploy.fixtures import API_KEY, BASE_URL


def _client(handler: Any, recorder: ContractRecorder, **kw: Any) -> DokployClient:
    transport = RecordingTransport(httpx.MockTransport(handler), recorder)
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_max", 0.01)
    return DokployClient(BASE_URL, API_KEY, transport=transport, **kw)


async def test_each_call_is_the_request_httpx_s_own_client_would_send() -> None:
    """The client builds its requests itself (issue 26): what reaches the transport must be
    what `httpx.AsyncClient` would have sent, header for header, in order, byte for byte."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"projectId": "p1", "name": "n", "items": [], "total": 0})

    async with DokployClient(BASE_URL, API_KEY, transport=httpx.MockTransport(handler)) as client:
        await client.project_named("näme & co/2")
        await client.application_update("app-1", description="ünïcode", autoDeploy=True)
    reference = httpx.AsyncClient(
        base_url=client.base_url,
        headers={"x-api-key": API_KEY, "accept": "application/json"},
        timeout=DEFAULT_TIMEOUT_SECONDS,
    )
    expected = [
        reference.build_request(
            "GET",
            "/project.search",
            params={"name": "näme & co/2", "limit": "100", "offset": "0"},
        ),
        reference.build_request(
            "POST",
            "/application.update",
            json={"description": "ünïcode", "autoDeploy": True, "applicationId": "app-1"},
        ),
    ]
    assert [(r.method, r.url, r.headers.raw, r.content) for r in sent] == [
        (r.method, r.url, r.headers.raw, r.content) for r in expected
    ]
    assert sent[0].extensions["timeout"] == expected[0].extensions["timeout"]


def test_base_url_is_normalised_with_or_without_api() -> None:
    for url in ("https://d.example.test", "https://d.example.test/", "https://d.example.test/api/"):
        assert normalise_base_url(url) == "https://d.example.test/api"


def test_config_reads_environment_and_hides_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", "https://d.example.test")
    monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", "very-secret-key")
    config = DokployConfig()
    assert config.api_key.get_secret_value() == "very-secret-key"
    assert "very-secret-key" not in repr(config)
    client = DokployClient.from_config(config)
    assert client.base_url == "https://d.example.test/api"
    assert "very-secret-key" not in repr(client)


async def test_project_create_returns_project_and_its_production_environment(
    dokploy_client: DokployClient,
) -> None:
    created = await dokploy_client.project_create("shop", "the shop")
    assert created.project.name == "shop"
    assert created.environment.name == "production"
    assert created.environment.is_default is True
    assert created.environment.project_id == created.project.project_id


async def test_project_all_nests_environments_and_services(dokploy_client: DokployClient) -> None:
    created = await dokploy_client.project_create("shop")
    env_id = created.environment.environment_id
    app = await dokploy_client.application_create("web", env_id)
    comp = await dokploy_client.compose_create("db", env_id, compose_file="services: {}")
    [project] = await dokploy_client.project_all()
    [env] = project.environments
    assert [a.application_id for a in env.applications] == [app.application_id]
    assert [c.compose_id for c in env.compose] == [comp.compose_id]
    assert env.applications[0].environment_id == env_id  # linked, though Dokploy omits it


async def test_project_named_keeps_the_exact_name_from_every_page(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    """`project.search` matches a part of the name, case-insensitively, 100 a page: the exact
    name is kept, from whichever page it is on."""
    shop = (await dokploy_client.project_create("shop")).project  # oldest: on the last page
    for name in ("Shop", "shop-old", "workshop", *(f"shop-{n}" for n in range(100))):
        await dokploy_client.project_create(name)
    assert [p.project_id for p in await dokploy_client.project_named("shop")] == [shop.project_id]
    assert await dokploy_client.project_named("shops") == []
    # An empty answer is not "none".
    emulator.faults.empty_body("project.search")
    with pytest.raises(DokployError):
        await dokploy_client.project_named("shop")


async def test_project_named_refuses_a_page_short_of_its_total(
    dokploy_contract: ContractRecorder,
) -> None:
    """Five matches promised, none sent: the rest may hold the name, so no answer."""
    page = json.dumps({"items": [], "total": 5}).encode()
    handler = lambda request: httpx.Response(200, content=page)  # noqa: E731
    async with _client(handler, dokploy_contract) as client:
        with pytest.raises(DokployError, match="every project matching"):
            await client.project_named("shop")


async def test_deploy_with_empty_body_and_writes_answering_true_succeed(
    dokploy_client: DokployClient,
) -> None:
    env_id = (await dokploy_client.project_create("p")).environment.environment_id
    app = await dokploy_client.application_create("web", env_id)
    await dokploy_client.application_update(app.application_id, replicas=2)
    await dokploy_client.application_deploy(app.application_id)
    assert (await dokploy_client.application_one(app.application_id)).replicas == 2


async def test_compose_update_returns_the_updated_row(dokploy_client: DokployClient) -> None:
    env_id = (await dokploy_client.project_create("p")).environment.environment_id
    comp = await dokploy_client.compose_create("db", env_id, compose_file="a")
    updated = await dokploy_client.compose_update(
        comp.compose_id, compose_file="b", description="d"
    )
    assert (updated.compose_file, updated.description) == ("b", "d")


async def test_compose_update_answering_true_is_read_back(
    dokploy_contract: ContractRecorder,
) -> None:
    row = {"composeId": "c1", "name": "db", "composeFile": "b"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=True if request.method == "POST" else row)

    async with _client(handler, dokploy_contract) as client:
        assert (await client.compose_update("c1", compose_file="b")).compose_file == "b"


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        # A tRPC body on a 401 is a permission check refusing a working key (Dokploy v0.30);
        # a bad key gets a bare {"message": "Unauthorized"} (below).
        (401, DokployAccessDenied),
        (403, DokployForbidden),
        (404, DokployNotFound),
        (409, DokployConflict),
        (500, DokployTransientError),
        (503, DokployTransientError),
    ],
)
async def test_trpc_error_bodies_become_typed_errors(
    status: int, exc_type: type[DokployError], dokploy_contract: ContractRecorder
) -> None:
    body = {"message": "nope", "code": "X", "data": {"httpStatus": status, "path": "project.one"}}
    handler = lambda request: httpx.Response(status, json=body)  # noqa: E731
    async with _client(handler, dokploy_contract, retry_attempts=1) as client:
        with pytest.raises(exc_type) as caught:
            await client.project_one("p1")
    assert caught.value.procedure == "project.one"
    assert caught.value.http_status == status
    assert "nope" in str(caught.value)


async def test_a_bare_401_is_a_bad_key(dokploy_contract: ContractRecorder) -> None:
    handler = lambda request: httpx.Response(401, json={"message": "Unauthorized"})  # noqa: E731
    async with _client(handler, dokploy_contract, retry_attempts=1) as client:
        with pytest.raises(DokployUnauthorized) as caught:
            await client.project_one("p1")
    assert not isinstance(caught.value, DokployAccessDenied)


async def test_validation_error_carries_zod_issue_paths(dokploy_emulator: Any) -> None:
    # This request breaks the contract on purpose, so it bypasses the contract recorder.
    transport = httpx.ASGITransport(app=dokploy_emulator)
    async with DokployClient(BASE_URL, API_KEY, transport=transport) as client:
        env_id = (await client.project_create("p")).environment.environment_id
        app = await client.application_create("web", env_id)
        with pytest.raises(DokployValidationError) as caught:
            await client.application_update(app.application_id, app_name="bad name!")
    pattern = "/^[a-zA-Z0-9._-]+$/"
    said = f"Invalid string: must match pattern {pattern}"  # zod v4, as Dokploy v0.30 says
    assert [(i.path, i.message) for i in caught.value.issues] == [(("appName",), said)]
    assert f"appName: {said}" in str(caught.value)


async def test_auth_failure_is_an_error_never_an_empty_project_list(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    await dokploy_client.project_create("exists")
    emulator.faults.unauthorized()
    with pytest.raises(DokployUnauthorized) as caught:
        await dokploy_client.project_all()
    assert "Unauthorized" in str(caught.value)
    with pytest.raises(DokployUnauthorized):
        await dokploy_client.preflight()


async def test_wrong_key_fails_preflight_without_retrying(
    dokploy_emulator: Any, dokploy_contract: ContractRecorder
) -> None:
    transport = RecordingTransport(httpx.ASGITransport(app=dokploy_emulator), dokploy_contract)
    async with DokployClient(BASE_URL, "wrong-key", transport=transport) as client:
        with pytest.raises(DokployUnauthorized):
            await client.preflight()
    assert len(transport.seen) == 1  # an auth failure is a gate, not a retry storm


async def test_a_url_without_a_scheme_is_a_configuration_error_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with DokployClient("localhost:1234", "k", timeout=1, backoff_base=0.001) as client:
        with pytest.raises(DokployAddressError) as caught:
            await client.preflight()
    assert not isinstance(caught.value, TransientFailure)
    assert "localhost:1234/api" in str(caught.value)
    assert "retrying" not in caplog.text


@pytest.mark.parametrize("body", [b"", b"<html>login</html>", b'{"not": "a list"}'])
async def test_list_call_that_answers_no_list_fails_closed(
    body: bytes, dokploy_contract: ContractRecorder
) -> None:
    handler = lambda request: httpx.Response(200, content=body)  # noqa: E731
    async with _client(handler, dokploy_contract) as client:
        with pytest.raises(DokployError):
            await client.project_all()


async def test_reads_are_retried_on_transient_errors(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    await dokploy_client.project_create("p")
    emulator.faults.fail_next("project.all", status=502, count=2)
    assert len(await dokploy_client.project_all()) == 1


async def test_reads_give_up_after_the_configured_attempts(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    emulator.faults.fail_next("project.all", status=500, count=3)
    with pytest.raises(DokployTransientError):
        await dokploy_client.project_all()


async def test_creates_are_never_retried_after_a_server_error(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await dokploy_client.project_create("p")).environment.environment_id
    emulator.faults.fail_next("application.create", status=500, count=1)
    with pytest.raises(DokployTransientError):
        await dokploy_client.application_create("web", env_id)
    assert emulator.faults.procedures["application.create"].fail_next == 0
    assert emulator.state.applications == {}  # one attempt, refused, nothing created


async def test_rate_limit_is_retried_after_retry_after(dokploy_contract: ContractRecorder) -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"retry-after": "0.02"}, json={"message": "slow down"}
            )
        return httpx.Response(200, json=[])

    async with _client(handler, dokploy_contract, retry_after_cap=1.0) as client:
        assert await client.server_all() == []
    assert len(calls) == 2


async def test_rate_limit_exhausted_surfaces_retry_after(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    emulator.faults.rate_limit(count=5, retry_after=0.01)
    with pytest.raises(DokployRateLimited) as caught:
        await dokploy_client.server_all()
    assert caught.value.retry_after == pytest.approx(0.01)


def test_rate_limit_reads_retry_after_as_an_http_date() -> None:
    when = formatdate(time.time() + 120, usegmt=True)
    error = error_from_response("server.all", 429, {"message": "slow down"}, when)
    assert isinstance(error, DokployRateLimited)
    assert error.retry_after == pytest.approx(120, abs=5)


async def test_connection_refused_is_transient(dokploy_contract: ContractRecorder) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _client(handler, dokploy_contract, retry_attempts=2) as client:
        with pytest.raises(DokployConnectError):
            await client.project_all()


async def test_secrets_stay_out_of_errors_reprs_and_logs(
    dokploy_client: DokployClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s3cr3t-value-XYZ"
    env_id = (await dokploy_client.project_create("p")).environment.environment_id
    app = await dokploy_client.application_create("web", env_id)
    await dokploy_client.application_save_environment(app.application_id, f"TOKEN={secret}")
    emulator.faults.fail_next("application.saveEnvironment", status=500, count=3)
    with pytest.raises(DokployTransientError) as caught:
        await dokploy_client.application_save_environment(app.application_id, f"TOKEN={secret}")
    fetched = await dokploy_client.application_one(app.application_id)
    assert fetched.env == f"TOKEN={secret}"
    emulator.faults.fail_next("application.saveDockerProvider", status=400)
    with pytest.raises(DokployError) as caught2:
        await dokploy_client.application_save_docker_provider(
            app.application_id, "img", username="u", password=secret
        )
    for text in (
        str(caught.value),
        repr(caught.value),
        str(caught2.value),
        repr(fetched),
        caplog.text,
    ):
        assert secret not in text
        assert API_KEY not in text


async def test_unexpected_row_shape_error_names_fields_not_values(
    dokploy_contract: ContractRecorder,
) -> None:
    row = {"applicationId": 5, "name": "w", "env": "TOKEN=leak-me"}
    async with _client(lambda r: httpx.Response(200, json=row), dokploy_contract) as client:
        with pytest.raises(DokployError) as caught:
            await client.application_one("a1")
    assert "applicationId" in str(caught.value)
    assert "leak-me" not in str(caught.value)


def test_emulated_bodies_round_trip_as_json() -> None:
    # Guard for the MockTransport helpers above: json=True must encode as the literal true.
    assert httpx.Response(200, json=True).content == b"true"
    assert json.loads(b"true") is True


async def test_create_refused_with_429_is_sent_again_once_allowed(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    # A 429 means Dokploy did not act, so even a create may be repeated.
    env_id = (await dokploy_client.project_create("p")).environment.environment_id
    emulator.faults.rate_limit(count=1, retry_after=0.01)
    await dokploy_client.application_create("web", env_id)
    assert [a["name"] for a in emulator.state.applications.values()] == ["web"]
