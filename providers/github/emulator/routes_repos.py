"""Emulated REST routes for pull requests, issue comments and deployments."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from providers.github.emulator import objects
from providers.github.emulator.http import base_url, body_of, emulator, invalid, not_found, page
from providers.github.emulator.state import (
    EmuComment,
    EmuDeployment,
    EmuDeploymentStatus,
    EmulatorError,
    EmuRepo,
)

router = APIRouter()

DEPLOYMENT_STATES = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def _repo(request: Request, owner: str, repo: str) -> EmuRepo | None:
    return emulator(request).repos.get(f"{owner}/{repo}")


@router.get("/repos/{owner}/{repo}/pulls")
async def list_pulls(request: Request, owner: str, repo: str) -> Response:
    state = emulator(request)
    if _repo(request, owner, repo) is None:
        return not_found()
    wanted = request.query_params.get("state", "open")
    if wanted not in {"open", "closed", "all"}:
        return invalid("Validation Failed", field="state")
    pulls = [p for p in state.pulls[(owner, repo)].values() if wanted in ("all", p.state)]
    desc = request.query_params.get("direction", "desc") == "desc"
    pulls.sort(key=lambda p: p.number, reverse=desc)
    base = base_url(request)
    return page(request, [objects.pull(state, base, p, full=False) for p in pulls])


@router.get("/repos/{owner}/{repo}/pulls/{number}")
async def get_pull(request: Request, owner: str, repo: str, number: int) -> Response:
    state = emulator(request)
    try:
        pr = state.pull(owner, repo, number)
    except EmulatorError:
        return not_found()
    return JSONResponse(objects.pull(state, base_url(request), pr, full=True))


@router.get("/repos/{owner}/{repo}/issues/{number}/comments")
async def list_comments(request: Request, owner: str, repo: str, number: int) -> Response:
    state = emulator(request)
    if (owner, repo) not in state.pulls or number not in state.pulls[(owner, repo)]:
        return not_found()
    items = sorted(state.comments_of(owner, repo, number), key=lambda c: c.id)
    base = base_url(request)
    return page(request, [objects.comment(state, base, c) for c in items])


@router.post("/repos/{owner}/{repo}/issues/{number}/comments")
async def create_comment(request: Request, owner: str, repo: str, number: int) -> Response:
    state = emulator(request)
    data = await body_of(request)
    if isinstance(data, Response):
        return data
    if not isinstance(data.get("body"), str) or not data["body"]:
        return invalid("Validation Failed", field="body", code="missing_field")
    try:
        item = state.add_comment(owner, repo, number, data["body"])
    except EmulatorError:
        return not_found()
    content = objects.comment(state, base_url(request), item)
    return JSONResponse(content, status_code=201, headers={"Location": content["url"]})


@router.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}")
async def update_comment(request: Request, owner: str, repo: str, comment_id: int) -> Response:
    state = emulator(request)
    item: EmuComment | None = state.comments.get(comment_id)
    if item is None or (item.owner, item.repo) != (owner, repo):
        return not_found()
    data = await body_of(request)
    if isinstance(data, Response):
        return data
    if not isinstance(data.get("body"), str) or not data["body"]:
        return invalid("Validation Failed", field="body", code="missing_field")
    item.body, item.updated_at = data["body"], state.now()
    return JSONResponse(objects.comment(state, base_url(request), item))


def _resolve_ref(request: Request, found: EmuRepo, ref: str) -> str | None:
    if ref == found.default_branch:
        return found.base_sha
    for pr in emulator(request).pulls[(found.owner, found.name)].values():
        if ref in (pr.head_ref, pr.head_sha, f"refs/pull/{pr.number}/head"):
            return pr.head_sha
    return ref if _SHA.match(ref) and len(ref) == 40 else None


@router.get("/repos/{owner}/{repo}/deployments")
async def list_deployments(request: Request, owner: str, repo: str) -> Response:
    state = emulator(request)
    if _repo(request, owner, repo) is None:
        return not_found()
    query = request.query_params
    items = [
        d
        for d in state.deployments_of(owner, repo)
        if all(
            query.get(key) in (None, value)
            for key, value in (("environment", d.environment), ("ref", d.ref), ("sha", d.sha))
        )
    ]
    base = base_url(request)
    return page(request, [objects.deployment(state, base, d) for d in items])


@router.post("/repos/{owner}/{repo}/deployments")
async def create_deployment(request: Request, owner: str, repo: str) -> Response:
    state = emulator(request)
    found = _repo(request, owner, repo)
    if found is None:
        return not_found()
    data = await body_of(request)
    if isinstance(data, Response):
        return data
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        return invalid("Validation Failed", field="ref", code="missing_field")
    sha = _resolve_ref(request, found, ref)
    if sha is None:
        return invalid(f"No ref found for: {ref}")
    environment = data.get("environment", "production")
    now = state.now()
    item = EmuDeployment(
        id=state.new_id(),
        owner=owner,
        repo=repo,
        ref=ref,
        sha=sha,
        environment=environment,
        task=data.get("task", "deploy"),
        description=data.get("description", ""),
        payload=data.get("payload", {}),
        transient=bool(data.get("transient_environment", False)),
        production=bool(data.get("production_environment", environment == "production")),
        creator=state.bot_login,
        created_at=now,
        updated_at=now,
    )
    state.deployments[item.id] = item
    return JSONResponse(objects.deployment(state, base_url(request), item), status_code=201)


@router.get("/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
async def list_statuses(request: Request, owner: str, repo: str, deployment_id: int) -> Response:
    state = emulator(request)
    item = state.deployments.get(deployment_id)
    if item is None or (item.owner, item.repo) != (owner, repo):
        return not_found()
    base = base_url(request)
    statuses = sorted(item.statuses, key=lambda s: s.id, reverse=True)
    return page(request, [objects.deployment_status(state, base, item, s) for s in statuses])


@router.post("/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
async def create_status(request: Request, owner: str, repo: str, deployment_id: int) -> Response:
    state = emulator(request)
    item = state.deployments.get(deployment_id)
    if item is None or (item.owner, item.repo) != (owner, repo):
        return not_found()
    data = await body_of(request)
    if isinstance(data, Response):
        return data
    if data.get("state") not in DEPLOYMENT_STATES:
        return invalid("Validation Failed", field="state")
    log_url = data.get("log_url") or data.get("target_url") or ""
    status = EmuDeploymentStatus(
        id=state.new_id(),
        state=data["state"],
        description=str(data.get("description", ""))[:140],
        environment=data.get("environment", item.environment),
        environment_url=data.get("environment_url", ""),
        log_url=log_url,
        creator=state.bot_login,
        created_at=state.now(),
    )
    if status.state == "success" and data.get("auto_inactive", True):
        _inactivate_previous(request, item)
    item.statuses.append(status)
    item.updated_at = status.created_at
    content = objects.deployment_status(state, base_url(request), item, status)
    return JSONResponse(content, status_code=201, headers={"Location": content["url"]})


def _inactivate_previous(request: Request, current: EmuDeployment) -> None:
    # `auto_inactive` (the REST description): an `inactive` status is added to all prior
    # non-transient, non-production deployments of the same environment that had a
    # `success` state. Transient ones (previews) are left as they are: their creator must
    # mark them inactive itself.
    state = emulator(request)
    for other in state.deployments_of(current.owner, current.repo):
        if other.id >= current.id or other.environment != current.environment:
            continue
        if other.transient or other.production:
            continue
        if not other.statuses or other.statuses[-1].state != "success":
            continue
        other.statuses.append(
            EmuDeploymentStatus(
                id=state.new_id(),
                state="inactive",
                description="",
                environment=other.environment,
                environment_url="",
                log_url="",
                creator=state.bot_login,
                created_at=state.now(),
            )
        )
