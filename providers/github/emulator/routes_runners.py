"""Emulated REST routes for self-hosted runners, at repository and organization scope."""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from providers.github.emulator import objects
from providers.github.emulator.http import body_of, emulator, fail, invalid, not_found, page
from providers.github.emulator.state import DEFAULT_RUNNER_LABELS, EmuRunner

router = APIRouter()

# Both scopes share one set of handlers; the scope key is "owner/repo" or "org".
PREFIXES = ("/repos/{owner}/{repo}/actions/runners", "/orgs/{owner}/actions/runners")


def _scope(request: Request) -> str:
    # From the path only: "repo" must never come from a query parameter.
    params = request.path_params
    return f"{params['owner']}/{params['repo']}" if "repo" in params else str(params["owner"])


def _scope_exists(request: Request, scope: str) -> bool:
    state = emulator(request)
    if "/" in scope:
        return scope in state.repos
    return True  # organizations exist implicitly


def _runner(request: Request, scope: str, runner_id: int) -> EmuRunner | None:
    found = emulator(request).runners.get(runner_id)
    return found if found is not None and found.scope == scope else None


def _labels_response(item: EmuRunner) -> JSONResponse:
    labels = objects.runner_labels(item)
    return JSONResponse({"total_count": len(labels), "labels": labels})


async def list_runners(request: Request) -> Response:
    scope = _scope(request)
    if not _scope_exists(request, scope):
        return not_found()
    items = emulator(request).runners_in(scope)
    name = request.query_params.get("name")
    if name is not None:
        items = [r for r in items if r.name == name]
    return page(request, [objects.runner(r) for r in items], wrap="runners")


async def get_runner(request: Request, runner_id: int) -> Response:
    item = _runner(request, _scope(request), runner_id)
    return not_found() if item is None else JSONResponse(objects.runner(item))


async def delete_runner(request: Request, runner_id: int) -> Response:
    item = _runner(request, _scope(request), runner_id)
    if item is None:
        return not_found()
    if item.busy:
        return fail(422, f'Bad request - Runner "{item.name}" is still running a job"')
    del emulator(request).runners[runner_id]
    return Response(status_code=204)


async def registration_token(request: Request) -> Response:
    return _token(request, _scope(request))


async def remove_token(request: Request) -> Response:
    return _token(request, _scope(request))


def _token(request: Request, scope: str) -> Response:
    if not _scope_exists(request, scope):
        return not_found()
    token, expires = emulator(request).issue_runner_token()
    return JSONResponse({"token": token, "expires_at": objects.iso(expires)}, status_code=201)


async def generate_jitconfig(request: Request) -> Response:
    scope = _scope(request)
    if not _scope_exists(request, scope):
        return not_found()
    data = await body_of(request)
    if isinstance(data, Response):
        return data
    labels = data.get("labels")
    if not isinstance(data.get("name"), str) or not data["name"]:
        return invalid("Validation Failed", field="name", code="missing_field")
    if not isinstance(data.get("runner_group_id"), int):
        return invalid("Validation Failed", field="runner_group_id", code="missing_field")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        return invalid("Validation Failed", field="labels", code="missing_field")
    state = emulator(request)
    if any(r.name == data["name"] for r in state.runners_in(scope)):
        return fail(409, "Already exists - A runner with the name already exists.")
    item = state.add_runner(
        scope,
        data["name"],
        status="offline",
        labels=labels,
        runner_group_id=data["runner_group_id"],
        ephemeral=True,
    )
    token, _ = state.issue_runner_token()
    config = {".runner": {"name": item.name, "id": item.id}, ".credentials": {"token": token}}
    encoded = base64.b64encode(json.dumps(config).encode()).decode()
    return JSONResponse(
        {"runner": objects.runner(item), "encoded_jit_config": encoded}, status_code=201
    )


async def list_labels(request: Request, runner_id: int) -> Response:
    item = _runner(request, _scope(request), runner_id)
    return not_found() if item is None else _labels_response(item)


async def _label_names(request: Request, minimum: int) -> list[str] | Response:
    data = await body_of(request)
    if isinstance(data, Response):
        return data
    labels = data.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        return invalid("Validation Failed", field="labels")
    if not minimum <= len(labels) <= 100:
        return invalid("Validation Failed", field="labels")
    return list(dict.fromkeys(labels))


async def add_labels(request: Request, runner_id: int) -> Response:
    item = _runner(request, _scope(request), runner_id)
    if item is None:
        return not_found()
    names = await _label_names(request, 1)
    if isinstance(names, Response):
        return names
    have = {name for name, _ in item.labels}
    item.labels += [(n, "custom") for n in names if n not in have]
    return _labels_response(item)


async def set_labels(request: Request, runner_id: int) -> Response:
    item = _runner(request, _scope(request), runner_id)
    if item is None:
        return not_found()
    names = await _label_names(request, 0)
    if isinstance(names, Response):
        return names
    read_only = [(n, kind) for n, kind in item.labels if kind == "read-only"]
    item.labels = read_only + [(n, "custom") for n in names if n not in DEFAULT_RUNNER_LABELS]
    return _labels_response(item)


async def remove_label(request: Request, runner_id: int, name: str) -> Response:
    item = _runner(request, _scope(request), runner_id)
    if item is None:
        return not_found()
    name = unquote(name)
    if (name, "custom") not in item.labels:
        return not_found()
    item.labels = [(n, kind) for n, kind in item.labels if (n, kind) != (name, "custom")]
    return _labels_response(item)


for _prefix in PREFIXES:
    router.add_api_route(_prefix, list_runners, methods=["GET"])
    router.add_api_route(f"{_prefix}/registration-token", registration_token, methods=["POST"])
    router.add_api_route(f"{_prefix}/remove-token", remove_token, methods=["POST"])
    router.add_api_route(f"{_prefix}/generate-jitconfig", generate_jitconfig, methods=["POST"])
    router.add_api_route(f"{_prefix}/{{runner_id}}", get_runner, methods=["GET"])
    router.add_api_route(f"{_prefix}/{{runner_id}}", delete_runner, methods=["DELETE"])
    router.add_api_route(f"{_prefix}/{{runner_id}}/labels", list_labels, methods=["GET"])
    router.add_api_route(f"{_prefix}/{{runner_id}}/labels", add_labels, methods=["POST"])
    router.add_api_route(f"{_prefix}/{{runner_id}}/labels", set_labels, methods=["PUT"])
    router.add_api_route(
        f"{_prefix}/{{runner_id}}/labels/{{name}}", remove_label, methods=["DELETE"]
    )
