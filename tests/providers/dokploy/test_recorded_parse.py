"""Every answer the real Dokploy v0.30.2 server gave (tests/contracts/dokploy-real-v0.30.2/)
goes through Setpoint's client as it is: each 200 of a procedure the client calls parses into
its models, and each error becomes the typed error the reconciler acts on.

The transport hands the client the recorded answer of the recorded request; nothing of
Setpoint's own is stood in for.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import (
    DokployError,
    DokployNotFound,
    DokployTransientError,
    DokployUnauthorized,
    DokployValidationError,
)
from providers.dokploy.models import Application, Compose, Environment, Project
from tests.providers.dokploy.recording import Exchange, exchanges

Args = dict[str, Any]
Call = Callable[[DokployClient, Args], Awaitable[Any]]

# How the client makes each recorded procedure's request, from the recorded arguments.
CALLS: dict[str, Call] = {
    "user.get": lambda c, a: c.preflight(),
    "project.all": lambda c, a: c.project_all(),
    "project.one": lambda c, a: c.project_one(a["projectId"]),
    "project.create": lambda c, a: c.project_create(a["name"], a.get("description")),
    "environment.byProjectId": lambda c, a: c.environment_by_project_id(a["projectId"]),
    "environment.one": lambda c, a: c.environment_one(a["environmentId"]),
    "environment.create": lambda c, a: c.environment_create(a["projectId"], a["name"]),
    "application.create": lambda c, a: c.application_create(a["name"], a["environmentId"]),
    "application.one": lambda c, a: c.application_one(a["applicationId"]),
    "application.update": lambda c, a: c.application_update(
        a["applicationId"], **{k: v for k, v in a.items() if k != "applicationId"}
    ),
    "application.delete": lambda c, a: c.application_delete(a["applicationId"]),
    "application.saveEnvironment": lambda c, a: c.application_save_environment(
        a["applicationId"], a.get("env")
    ),
    "application.saveDockerProvider": lambda c, a: c.application_save_docker_provider(
        a["applicationId"], a["dockerImage"]
    ),
    "application.deploy": lambda c, a: c.application_deploy(a.get("applicationId", "x")),
    "application.redeploy": lambda c, a: c.application_redeploy(a["applicationId"]),
    "application.stop": lambda c, a: c.application_stop(a["applicationId"]),
    "application.start": lambda c, a: c.application_start(a["applicationId"]),
    "compose.create": lambda c, a: c.compose_create(a["name"], a["environmentId"]),
    "compose.one": lambda c, a: c.compose_one(a["composeId"]),
    "compose.update": lambda c, a: c.compose_update(a["composeId"], name="x"),
    "compose.delete": lambda c, a: c.compose_delete(a["composeId"]),
    "compose.saveEnvironment": lambda c, a: c.compose_save_environment(a["composeId"], "A=1"),
    "compose.deploy": lambda c, a: c.compose_deploy(a["composeId"]),
    "domain.byApplicationId": lambda c, a: c.domain_by_application_id(a["applicationId"]),
    "domain.byComposeId": lambda c, a: c.domain_by_compose_id(a["composeId"]),
    "domain.one": lambda c, a: c.domain_one(a["domainId"]),
    "domain.create": lambda c, a: c.domain_create(
        a["host"], application_id=a.get("applicationId"), compose_id=a.get("composeId")
    ),
    "domain.update": lambda c, a: c.domain_update(a["domainId"], host=a["host"]),
    "domain.delete": lambda c, a: c.domain_delete(a["domainId"]),
    "deployment.all": lambda c, a: c.deployment_all(a.get("applicationId", "")),
    "deployment.allByCompose": lambda c, a: c.deployment_all_by_compose(a["composeId"]),
    "server.all": lambda c, a: c.server_all(),
    "environment.remove": lambda c, a: c.environment_remove(a["environmentId"]),
}
# Recorded procedures the client has no method for (the harness called them directly).
NOT_CALLED = {"nosuch.procedure", "/notdokploy/api/user.get"}


def _answer(ex: Exchange) -> httpx.Response:
    headers = {"content-type": ex.content_type or "application/json"}
    if ex.response["kind"] == "json":
        content = json.dumps(ex.response["json"]).encode()
    else:
        content = ex.response.get("text", "").encode()
    return httpx.Response(ex.status, content=content, headers=headers)


def _client(ex: Exchange) -> DokployClient:
    transport = httpx.MockTransport(lambda _request: _answer(ex))
    return DokployClient(
        "http://dokploy.test",
        "recorded",
        transport=transport,
        retry_attempts=1,
        backoff_base=0.001,
        backoff_max=0.001,
    )


def _args(ex: Exchange) -> Args:
    """The recorded arguments; one the probes left out reads as "" (they sent bad input)."""
    body = ex.request.get("json") if ex.request["kind"] == "json" else None
    return defaultdict(str, {**ex.query, **(body if isinstance(body, dict) else {})})


def _by_procedure(status: int) -> list[Exchange]:
    return [e for e in exchanges() if e.status == status and e.procedure not in NOT_CALLED]


def test_every_recorded_procedure_is_called_by_the_client_or_named() -> None:
    recorded = {e.procedure for e in exchanges()}
    assert recorded - CALLS.keys() - NOT_CALLED == set()


@pytest.mark.parametrize("procedure", sorted(CALLS))
async def test_every_real_success_answer_parses(procedure: str) -> None:
    answered = [e for e in _by_procedure(200) if e.procedure == procedure]
    for ex in answered:
        async with _client(ex) as client:
            await CALLS[procedure](client, _args(ex))


async def test_real_rows_parse_into_what_the_reconciler_reads() -> None:
    """The fields Setpoint decides on come through from the real rows."""
    parsed: dict[str, list[Any]] = {}
    for ex in _by_procedure(200):
        if ex.procedure in ("application.one", "compose.one", "environment.byProjectId"):
            async with _client(ex) as client:
                parsed.setdefault(ex.procedure, []).append(
                    await CALLS[ex.procedure](client, _args(ex))
                )
    apps: list[Application] = parsed["application.one"]
    assert all(a.environment_id and a.app_name for a in apps)
    assert any(a.docker_image and a.deployments for a in apps)
    assert {d.status for a in apps for d in a.deployments} == {"error"}
    composes: list[Compose] = parsed["compose.one"]
    assert all(c.compose_file and c.environment_id for c in composes)
    # environment.byProjectId carries no projectId on its rows, only the nested project.
    environments: list[Environment] = [
        e for listed in parsed["environment.byProjectId"] for e in listed
    ]
    assert environments and all(e.project_id for e in environments)


async def test_real_project_listing_is_newest_first_and_the_client_keeps_every_project() -> None:
    listing = [e for e in _by_procedure(200) if e.procedure == "project.all"][-1]
    async with _client(listing) as client:
        projects: list[Project] = await client.project_all()
    stamps = [p.created_at or "" for p in projects]
    assert stamps == sorted(stamps, reverse=True)
    assert {p.name for p in projects} == {row["name"] for row in listing.json}


ERRORS: dict[int, type[DokployError]] = {
    400: DokployValidationError,
    401: DokployUnauthorized,
    404: DokployNotFound,
    415: DokployError,
    500: DokployTransientError,
}


@pytest.mark.parametrize("status", sorted(ERRORS))
async def test_every_real_error_answer_is_typed(status: int) -> None:
    answered = [e for e in _by_procedure(status) if e.procedure in CALLS]
    assert answered
    for ex in answered:
        async with _client(ex) as client:
            with pytest.raises(ERRORS[status]) as caught:
                await CALLS[ex.procedure](client, _args(ex))
        assert caught.value.http_status == status
        assert caught.value.message == ex.json["message"][:300]


async def test_real_validation_issues_name_the_field_and_zod_v4_message() -> None:
    answered = [e for e in _by_procedure(400) if e.json.get("issues")]
    assert answered
    for ex in answered:
        async with _client(ex) as client:
            with pytest.raises(DokployValidationError) as caught:
                await CALLS[ex.procedure](client, _args(ex))
        said = [(".".join(map(str, i["path"])), i["message"]) for i in ex.json["issues"]]
        assert [(".".join(map(str, i.path)), i.message) for i in caught.value.issues] == said
