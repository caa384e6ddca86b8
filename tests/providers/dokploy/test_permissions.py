"""Dokploy's per-service permission errors: a working key refused one service or call answers
401 with a tRPC body, which the client tells apart from a bad key's bare 401."""

from __future__ import annotations

import httpx
import pytest

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator
from providers.dokploy.emulator.faults import REMOTE_SERVER_REQUIRED, SERVICE_ACCESS_DENIED
from providers.dokploy.errors import DokployAccessDenied, DokployUnauthorized


async def _app(client: DokployClient) -> str:
    env_id = (await client.project_create("perm")).environment.environment_id
    return (await client.application_create("web", env_id)).application_id


async def test_a_service_refused_to_a_working_key_is_access_denied_not_unauthorized(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    app_id = await _app(dokploy_client)
    other = await _app(dokploy_client)
    emulator.faults.access_denied(app_id)
    await dokploy_client.preflight()  # the key passes
    with pytest.raises(DokployAccessDenied) as caught:
        await dokploy_client.application_one(app_id)
    assert (caught.value.http_status, caught.value.message) == (401, SERVICE_ACCESS_DENIED)
    assert not isinstance(caught.value, DokployUnauthorized)
    assert (await dokploy_client.application_one(other)).application_id == other
    with pytest.raises(DokployAccessDenied):
        await dokploy_client.domain_create("x.example.test", application_id=app_id)


async def test_a_bad_key_is_still_unauthorized(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    emulator.faults.unauthorized()
    with pytest.raises(DokployUnauthorized) as caught:
        await dokploy_client.preflight()
    assert not isinstance(caught.value, DokployAccessDenied)


async def test_the_refusal_has_dokploys_body_and_can_be_asked_for_over_http(
    raw_http: httpx.AsyncClient,
) -> None:
    spec = {
        "action": "access_denied",
        "procedure": "application.create",
        "message": REMOTE_SERVER_REQUIRED,
    }
    assert (await raw_http.post("/__emulator/faults", json=spec)).status_code == 200
    project = (await raw_http.post("/api/project.create", json={"name": "p"})).json()
    env_id = project["environment"]["environmentId"]
    answer = await raw_http.post(
        "/api/application.create", json={"name": "web", "environmentId": env_id}
    )
    assert answer.status_code == 401
    assert answer.json() == {
        "message": REMOTE_SERVER_REQUIRED,
        "code": "UNAUTHORIZED",
        "data": {
            "code": "UNAUTHORIZED",
            "httpStatus": 401,
            "path": "application.create",
            "zodError": None,
        },
    }
