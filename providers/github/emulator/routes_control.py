"""Routes outside GitHub's API: the OIDC issuer, and `/__emulator/...` test controls."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from providers.github.emulator import objects
from providers.github.emulator.http import base_url, body_of, emulator, fail
from providers.github.emulator.state import EmulatorError
from providers.github.emulator.webhook_sender import send_webhook

router = APIRouter()


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> Response:
    return JSONResponse(emulator(request).oidc.discovery(base_url(request)))


@router.get("/.well-known/jwks")
async def jwks(request: Request) -> Response:
    return JSONResponse(emulator(request).oidc.jwks())


def _ok(content: Any, status: int = 200) -> Response:
    return JSONResponse(content, status_code=status)


async def _body(request: Request) -> dict[str, Any] | Response:
    return await body_of(request)


@router.get("/__emulator/state")
async def dump(request: Request) -> Response:
    state = emulator(request)
    return _ok(
        {
            "repos": sorted(state.repos),
            "pulls": [
                {"repo": f"{o}/{r}", "number": n, "state": p.state, "head_sha": p.head_sha}
                for (o, r), pulls in state.pulls.items()
                for n, p in pulls.items()
            ],
            "comments": len(state.comments),
            "deployments": len(state.deployments),
            "runners": [objects.runner(r) | {"scope": r.scope} for r in state.runners.values()],
            "faults": [f.to_json() for f in state.faults.all()],
            "rate_limit": vars(state.budget),
        }
    )


@router.post("/__emulator/faults")
async def add_fault(request: Request) -> Response:
    data = await _body(request)
    if isinstance(data, Response):
        return data
    try:
        fault = emulator(request).faults.add(**data)
    except (TypeError, ValueError) as exc:
        return fail(400, str(exc))
    return _ok(fault.to_json(), 201)


@router.delete("/__emulator/faults")
async def clear_faults(request: Request) -> Response:
    emulator(request).faults.clear()
    return Response(status_code=204)


@router.put("/__emulator/rate-limit")
async def set_rate_limit(request: Request) -> Response:
    data = await _body(request)
    if isinstance(data, Response):
        return data
    emulator(request).set_rate_limit(
        remaining=int(data["remaining"]),
        limit=data.get("limit"),
        reset_in=float(data.get("reset_in", 3600)),
    )
    return _ok(vars(emulator(request).budget))


@router.put("/__emulator/tokens")
async def set_tokens(request: Request) -> Response:
    data = await _body(request)
    if isinstance(data, Response):
        return data
    accepted = data.get("accepted")
    emulator(request).accepted_tokens = None if accepted is None else set(accepted)
    return Response(status_code=204)


@router.post("/__emulator/grants")
async def grant_token(request: Request) -> Response:
    """`{"token", "permissions": {"pull_requests": "read"}, "repositories": [...] | null}`"""
    data = await _body(request)
    if isinstance(data, Response):
        return data
    found = emulator(request).grant(
        str(data["token"]), dict(data.get("permissions") or {}), data.get("repositories")
    )
    chosen = None if found.repositories is None else sorted(found.repositories)
    return _ok({"permissions": found.permissions, "repositories": chosen})


@router.put("/__emulator/repos/{owner}/{repo}/visibility")
async def set_visibility(request: Request, owner: str, repo: str) -> Response:
    """`{"private": true | false}`"""
    data = await _body(request)
    if isinstance(data, Response):
        return data
    found = emulator(request).set_visibility(owner, repo, private=bool(data["private"]))
    return _ok({"full_name": found.full_name, "private": found.private})


@router.post("/__emulator/repos")
async def add_repo(request: Request) -> Response:
    data = await _body(request)
    if isinstance(data, Response):
        return data
    found = emulator(request).add_repo(data["owner"], data["name"])
    return _ok({"id": found.id, "full_name": found.full_name}, 201)


@router.post("/__emulator/repos/{owner}/{repo}/pulls")
async def open_pull(request: Request, owner: str, repo: str) -> Response:
    data = await _body(request)
    if isinstance(data, Response):
        return data
    pr = emulator(request).open_pull(owner, repo, **data)
    return _ok({"number": pr.number, "head_sha": pr.head_sha}, 201)


@router.post("/__emulator/repos/{owner}/{repo}/pulls/{number}/{action}")
async def change_pull(
    request: Request, owner: str, repo: str, number: int, action: str
) -> Response:
    """action: close (body {"merged": bool}), reopen, labels ({"labels": [...]}), push
    ({"sha": optional})."""
    state = emulator(request)
    data = await _body(request)
    if isinstance(data, Response):
        return data
    try:
        if action == "close":
            pr = state.close_pull(owner, repo, number, merged=bool(data.get("merged")))
        elif action == "reopen":
            pr = state.reopen_pull(owner, repo, number)
        elif action == "labels":
            pr = state.set_labels(owner, repo, number, data.get("labels", []))
        elif action == "push":
            state.push(owner, repo, number, data.get("sha"))
            pr = state.pull(owner, repo, number)
        else:
            return fail(404, f"unknown action {action}")
    except EmulatorError as exc:
        return fail(404, str(exc))
    return _ok(
        {"number": pr.number, "state": pr.state, "head_sha": pr.head_sha, "labels": pr.labels}
    )


@router.post("/__emulator/runners")
async def add_runner(request: Request) -> Response:
    data = await _body(request)
    if isinstance(data, Response):
        return data
    item = emulator(request).add_runner(data.pop("scope"), data.pop("name"), **data)
    return _ok(objects.runner(item), 201)


@router.patch("/__emulator/runners/{runner_id}")
async def change_runner(request: Request, runner_id: int) -> Response:
    data = await _body(request)
    if isinstance(data, Response):
        return data
    try:
        item = emulator(request).set_runner(runner_id, **data)
    except EmulatorError as exc:
        return fail(404, str(exc))
    return _ok(objects.runner(item))


@router.post("/__emulator/oidc/token")
async def mint(request: Request) -> Response:
    """Body: {"claims": {...}, "kid": ..., "alg": "RS256", "ttl_seconds": 300, "omit": [...]}."""
    data = await _body(request)
    if isinstance(data, Response):
        return data
    state = emulator(request)
    issuer = state.oidc.issuer_for(base_url(request))
    token = state.oidc.mint(
        data.get("claims"),
        kid=data.get("kid"),
        alg=data.get("alg", "RS256"),
        ttl_seconds=int(data.get("ttl_seconds", 300)),
        omit=data.get("omit", ()),
        issuer=issuer,
    )
    return _ok({"token": token}, 201)


@router.post("/__emulator/webhooks/pull_request")
async def deliver(request: Request) -> Response:
    """Body: {"url", "secret", "owner", "repo", "number", "action", "label"?}; the emulator
    POSTs a signed `pull_request` delivery to `url` and reports the receiver's status."""
    data = await _body(request)
    if isinstance(data, Response):
        return data
    state = emulator(request)
    try:
        payload = state.pull_request_event(
            data["owner"],
            data["repo"],
            int(data["number"]),
            data["action"],
            label=data.get("label"),
        )
    except (EmulatorError, ValueError) as exc:
        return fail(422, str(exc))
    response = await send_webhook(
        data["url"], "pull_request", payload, data["secret"], transport=state.webhook_transport
    )
    return _ok({"status": response.status_code})
