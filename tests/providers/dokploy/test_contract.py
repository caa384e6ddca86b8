"""Contract fidelity: the client parses every live capture of the calls it uses, the
emulator answers in the same shapes, and both agree with the OpenAPI request schemas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.applications import Starlette

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator.procedures import PROCEDURES
from providers.dokploy.errors import DokployNotFound
from providers.dokploy.models import Project, ProjectCreated
from tests.providers.dokploy.contract import (
    ContractRecorder,
    RecordingTransport,
    check_request,
    live_captures,
    load_capture,
    operation,
    request_schema,
)
from tests.providers.dokploy.fixtures import API_KEY, BASE_URL, make_client

Call = Callable[[DokployClient], Awaitable[Any]]

# Which client call produces each capture (file name up to the first dot).
CALLS: dict[str, Call] = {
    "application-create": lambda c: c.application_create("API", "environment-1"),
    "application-one": lambda c: c.application_one("application-1"),
    "compose-create": lambda c: c.compose_create("Compose", "environment-1", compose_file="x"),
    "compose-one": lambda c: c.compose_one("compose-1"),
    "compose-update": lambda c: c.compose_update("compose-1", name="Compose Contract Updated"),
    "compose-delete": lambda c: c.compose_delete("compose-1"),
    "domain-by-application": lambda c: c.domain_by_application_id("application-1"),
    "domain-create": lambda c: c.domain_create("h.example.test", application_id="application-1"),
    "domain-delete": lambda c: c.domain_delete("domain-1"),
    "domain-one": lambda c: c.domain_one("domain-1"),
    "project-all": lambda c: c.project_all(),
    "project-one": lambda c: c.project_one("project-1"),
    "project-create": lambda c: c.project_create("IaC Contract Test"),
}
# Captured procedures Setpoint does not call.
UNUSED = {"compose-search"}


def _kind(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _replay(body: Any) -> httpx.MockTransport:
    status = 200
    if (
        isinstance(body, dict)
        and isinstance(body.get("data"), dict)
        and "httpStatus" in body["data"]
    ):
        status = body["data"]["httpStatus"]
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


def test_every_capture_is_mapped_to_a_client_call() -> None:
    kinds = {_kind(p) for p in live_captures()}
    assert kinds - UNUSED <= set(CALLS), kinds - UNUSED - set(CALLS)


@pytest.mark.parametrize("path", live_captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_client_parses_live_capture(path: Path, dokploy_contract: ContractRecorder) -> None:
    kind = _kind(path)
    if kind in UNUSED:
        pytest.skip("procedure not used by Setpoint")
    body = load_capture(path)
    transport = RecordingTransport(_replay(body), dokploy_contract)
    async with DokployClient(BASE_URL, API_KEY, transport=transport) as client:
        if isinstance(body, dict) and body.get("code") == "NOT_FOUND":
            with pytest.raises(DokployNotFound) as caught:
                await CALLS[kind](client)
            assert caught.value.message == body["message"]
            assert caught.value.http_status == 404
            return
        result = await CALLS[kind](client)
    rows = body if isinstance(body, list) else [body]
    parsed = result if isinstance(result, list) else [result]
    if result is None:  # deletes answer the row but the client only needs success
        return
    assert len(parsed) == len(rows)
    for row, model in zip(rows, parsed, strict=True):
        assert isinstance(model, BaseModel)
        if isinstance(model, ProjectCreated):
            assert model.project.project_id == row["project"]["projectId"]
            assert model.environment.is_default is True
            assert model.environment.name == "production"
            continue
        id_field = next(
            k for k in ("applicationId", "composeId", "domainId", "projectId") if k in row
        )
        assert (
            getattr(
                model,
                {
                    "applicationId": "application_id",
                    "composeId": "compose_id",
                    "domainId": "domain_id",
                    "projectId": "project_id",
                }[id_field],
            )
            == row[id_field]
        )
        if isinstance(model, Project):
            # Nested services carry no environmentId in the capture; the model links them.
            for env, env_row in zip(model.environments, row["environments"], strict=True):
                assert env.is_default is env_row.get("isDefault", False)
                assert all(a.environment_id == env.environment_id for a in env.applications)


def _shape_mismatches(capture: Any, emulated: Any, where: str = "$") -> list[str]:
    """Keys and JSON types the capture has and the emulator's answer lacks."""
    if capture is None or emulated is None:
        return []
    if isinstance(capture, dict):
        if not isinstance(emulated, dict):
            return [f"{where}: object expected"]
        out = [f"{where}.{k}: missing" for k in capture if k not in emulated]
        for k in capture:
            if k in emulated:
                out += _shape_mismatches(capture[k], emulated[k], f"{where}.{k}")
        return out
    if isinstance(capture, list):
        if not isinstance(emulated, list):
            return [f"{where}: array expected"]
        if capture and emulated:
            return _shape_mismatches(capture[0], emulated[0], f"{where}[0]")
        return []
    number = (int, float)
    same = (
        isinstance(capture, number)
        and isinstance(emulated, number)
        and not isinstance(capture, bool)
    )
    if not same and type(capture) is not type(emulated):
        return [f"{where}: {type(capture).__name__} vs {type(emulated).__name__}"]
    return []


async def _emulated_answers(app: Starlette) -> dict[str, Any]:
    """Drive the emulator through the captured scenarios; keep each raw answer."""
    answers: dict[str, Any] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL + "/api",
        headers={"x-api-key": API_KEY},
    ) as http:

        async def post(proc: str, body: dict[str, Any]) -> Any:
            return (await http.post("/" + proc, json=body)).json()

        async def get(proc: str, **params: str) -> Any:
            return (await http.get("/" + proc, params=params)).json()

        created = answers["project-create"] = await post(
            "project.create", {"name": "P", "description": "d"}
        )
        env_id = created["environment"]["environmentId"]
        project_id = created["project"]["projectId"]
        app_row = answers["application-create"] = await post(
            "application.create", {"name": "API", "environmentId": env_id}
        )
        app_id = app_row["applicationId"]
        domain = answers["domain-create"] = await post(
            "domain.create", {"host": "a.example.test", "applicationId": app_id, "port": 3000}
        )
        answers["domain-one"] = await get("domain.one", domainId=domain["domainId"])
        answers["domain-by-application"] = await get("domain.byApplicationId", applicationId=app_id)
        answers["application-one"] = await get("application.one", applicationId=app_id)
        answers["project-all"] = await get("project.all")
        answers["project-one"] = await get("project.one", projectId=project_id)
        comp = answers["compose-create"] = await post(
            "compose.create", {"name": "C", "environmentId": env_id, "composeFile": "services: {}"}
        )
        answers["compose-one"] = await get("compose.one", composeId=comp["composeId"])
        answers["compose-update"] = await post(
            "compose.update", {"composeId": comp["composeId"], "name": "C2"}
        )
        answers["domain-delete"] = await post("domain.delete", {"domainId": domain["domainId"]})
        answers["compose-delete"] = await post(
            "compose.delete", {"composeId": comp["composeId"], "deleteVolumes": False}
        )
        answers["not-found"] = await get("compose.one", composeId=comp["composeId"])
    return answers


async def test_emulator_answers_have_every_key_and_type_of_the_live_captures(
    dokploy_emulator: Starlette,
) -> None:
    answers = await _emulated_answers(dokploy_emulator)
    problems: list[str] = []
    for path in live_captures():
        kind = _kind(path)
        if kind in UNUSED:
            continue
        capture = load_capture(path)
        key = (
            "not-found"
            if isinstance(capture, dict) and capture.get("code") == "NOT_FOUND"
            else kind
        )
        emulated = answers[key]
        if key == "not-found":
            # Same error code and path shape; the message names the router's object.
            assert emulated["code"] == "NOT_FOUND" and emulated["data"]["httpStatus"] == 404
            capture = {k: v for k, v in capture.items() if k != "message"}
        problems += [
            f"{path.parent.name}/{path.name}: {m}" for m in _shape_mismatches(capture, emulated)
        ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("procedure", sorted(PROCEDURES))
def test_emulator_inputs_match_openapi_request_schemas(procedure: str) -> None:
    spec = PROCEDURES[procedure]
    op = operation(procedure, spec.method)
    assert op is not None, f"{spec.method} {procedure} is not in the contract"
    model_schema = spec.input.model_json_schema()
    required = set(model_schema.get("required", []))
    if spec.method == "GET":
        params = {p["name"]: p for p in op.get("parameters") or []}
        assert required == {n for n, p in params.items() if p.get("required")}
        assert set(model_schema.get("properties", {})) <= set(params)
    else:
        contract = request_schema(procedure)
        assert required == set(contract.get("required", []))
        assert set(model_schema.get("properties", {})) <= set(contract["properties"])


def test_contract_checker_rejects_what_dokploy_would_reject() -> None:
    """The recorder itself must be able to fail, or the contract test proves nothing."""
    missing_keys = httpx.Request(
        "POST",
        BASE_URL + "/api/application.saveEnvironment",
        json={"applicationId": "a", "env": ""},
    )
    assert any("required" in p for p in check_request(missing_keys))
    wrong_method = httpx.Request("POST", BASE_URL + "/api/project.all", json={})
    assert check_request(wrong_method)
    stray_key = httpx.Request(
        "POST", BASE_URL + "/api/project.create", json={"name": "x", "nope": 1}
    )
    assert any("nope" in p for p in check_request(stray_key))
    no_param = httpx.Request("GET", BASE_URL + "/api/project.one")
    assert any("projectId" in p for p in check_request(no_param))
    params = {"name": "shop", "limit": "ten"}
    not_a_number = httpx.Request("GET", BASE_URL + "/api/project.search", params=params)
    assert any("limit" in p for p in check_request(not_a_number))
    params["limit"] = "100"
    assert not check_request(httpx.Request("GET", BASE_URL + "/api/project.search", params=params))


async def test_every_client_procedure_conforms_to_the_contract(
    dokploy_emulator: Starlette, dokploy_contract: ContractRecorder
) -> None:
    """Drive each client method once against the emulator through the recorder."""
    client = make_client(dokploy_emulator, dokploy_contract)
    transport = client._http._transport  # the RecordingTransport
    assert isinstance(transport, RecordingTransport)
    async with client as c:
        await c.preflight()
        created = await c.project_create("shop", "desc")
        pid, eid = created.project.project_id, created.environment.environment_id
        await c.project_all()
        assert [p.project_id for p in await c.project_named("shop")] == [pid]
        await c.project_one(pid)
        await c.environment_by_project_id(pid)
        staging = await c.environment_create(pid, "staging", "pre-prod")
        await c.environment_one(staging.environment_id)
        app = await c.application_create("web", eid, app_name="web", description="d")
        aid = app.application_id
        await c.application_one(aid)
        await c.application_update(aid, description="new", replicas=2)
        await c.application_save_environment(aid, "A=1\n")
        await c.application_save_docker_provider(aid, "nginx:1", registry_url="r.example.test")
        await c.application_deploy(aid, title="t")
        await c.application_redeploy(aid)
        await c.application_stop(aid)
        await c.application_start(aid)
        await c.deployment_all(aid)
        dom = await c.domain_create("a.example.test", application_id=aid, port=80)
        await c.domain_update(
            dom.domain_id, host="b.example.test", https=True, certificate_type="letsencrypt"
        )
        await c.domain_one(dom.domain_id)
        await c.domain_by_application_id(aid)
        await c.domain_delete(dom.domain_id)
        comp = await c.compose_create("db", eid, compose_file="services: {}")
        cid = comp.compose_id
        await c.compose_one(cid)
        await c.compose_update(cid, description="x")
        await c.compose_save_environment(cid, "B=2")
        cdom = await c.domain_create("c.example.test", compose_id=cid, service_name="web", port=80)
        await c.domain_by_compose_id(cid)
        await c.compose_deploy(cid)
        await c.deployment_all_by_compose(cid)
        await c.domain_delete(cdom.domain_id)
        await c.compose_delete(cid)
        await c.application_delete(aid)
        await c.environment_remove(staging.environment_id)
        await c.server_all()
    client_procedures = {
        "user.get",
        "project.all",
        "project.one",
        "project.search",
        "project.create",
        "environment.byProjectId",
        "environment.one",
        "environment.create",
        "environment.remove",
        "application.create",
        "application.one",
        "application.update",
        "application.delete",
        "application.saveEnvironment",
        "application.saveDockerProvider",
        "application.deploy",
        "application.redeploy",
        "application.stop",
        "application.start",
        "compose.create",
        "compose.one",
        "compose.update",
        "compose.delete",
        "compose.saveEnvironment",
        "compose.deploy",
        "domain.byApplicationId",
        "domain.byComposeId",
        "domain.one",
        "domain.create",
        "domain.update",
        "domain.delete",
        "deployment.all",
        "deployment.allByCompose",
        "server.all",
    }
    assert transport.procedures() == client_procedures
