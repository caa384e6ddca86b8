"""The GitHub emulator as an ASGI app: auth, faults and rate-limit headers around the
emulated REST routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.github.emulator import objects
from providers.github.emulator.faults import Fault
from providers.github.emulator.http import EMPTY_LIST_FLAG, emulator, fail
from providers.github.emulator.permissions import Refusal
from providers.github.emulator.routes_control import router as control_router
from providers.github.emulator.routes_repos import router as repos_router
from providers.github.emulator.routes_runners import router as runners_router
from providers.github.emulator.state import EmulatorState, RateBudget

UNMETERED_PREFIXES = ("/__emulator", "/.well-known")
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)

Next = Callable[[Request], Awaitable[Response]]


def create_app(
    seed: int = 0,
    *,
    accepted_tokens: Iterable[str] | None = None,
    issuer_url: str | None = None,
    state: EmulatorState | None = None,
) -> FastAPI:
    """A fresh emulator. `accepted_tokens` None accepts any non-empty token; the OIDC
    issuer is `issuer_url`, or else the base URL the caller reached the emulator at."""
    app = FastAPI(title="GitHub emulator (Setpoint)", docs_url=None, redoc_url=None)
    app.state.emulator = state or EmulatorState(
        seed, accepted_tokens=accepted_tokens, issuer_url=issuer_url
    )
    app.middleware("http")(_github_edge)
    app.include_router(control_router)
    app.include_router(repos_router)
    app.include_router(runners_router)
    app.add_api_route("/user", _authenticated_user, methods=["GET"])
    app.add_api_route("/rate_limit", _rate_limit, methods=["GET"])
    return app


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in {"bearer", "token"}:
        return None
    return token.strip()


def _needs_a_user(request: Request) -> bool:
    """What GitHub answers anonymously with 401: writes, `/user`, and Actions runners."""
    path = request.url.path
    return request.method != "GET" or path == "/user" or "/actions/runners" in path


def _canonical_path(request: Request, state: EmulatorState) -> None:
    """`/repos/Acme/Shop/...` is routed as `/repos/acme/shop/...` when that repository was
    created as `acme/shop`: GitHub reads owner and repository names in any case."""
    parts = request.scope["path"].split("/")
    if len(parts) < 4 or parts[1] != "repos":
        return
    parts[2], parts[3] = state.canonical_repo(parts[2], parts[3])
    request.scope["path"] = "/".join(parts)


async def _github_edge(request: Request, call_next: Next) -> Response:
    if request.url.path.startswith(UNMETERED_PREFIXES):
        return await call_next(request)
    state = emulator(request)
    _canonical_path(request, state)
    token = _bearer(request)
    # No token is anonymous, as on GitHub (60 requests an hour); a bad token is a 401. Both
    # carry the anonymous budget's headers, as GitHub's 401s do.
    if token is None and _needs_a_user(request):
        return _metered(fail(401, "Requires authentication"), state.anonymous_budget)
    if token is not None and not state.token_accepted(token):
        return _metered(fail(401, "Bad credentials"), state.anonymous_budget)
    budget = state.budget if token is not None else state.anonymous_budget
    path = request.scope["path"]  # as routed: in the repository's own spelling
    state.requests.append((request.method, path))
    for fault in state.faults.firing(request.method, path):
        response = await _apply(fault, request, state)
        if response is not None:
            return _metered(response, budget)
    if budget.reset_epoch <= state.clock():
        budget.remaining, budget.reset_epoch = budget.limit, state.clock() + 3600
    if request.url.path == "/rate_limit":  # GitHub: asking does not count against it
        return _metered(await call_next(request), budget)
    if budget.remaining <= 0:
        who = "user ID 1" if token is not None else "127.0.0.1"
        return _metered(fail(403, f"API rate limit exceeded for {who}."), budget)
    budget.remaining -= 1
    refused = state.refusal(request.method, request.url.path, token)
    if refused is not None:
        return _metered(_refused(refused), budget)
    return _metered(await call_next(request), budget)


def _refused(refused: Refusal) -> Response:
    response = fail(refused.status, refused.message)
    if refused.accepted is not None:
        response.headers["x-accepted-github-permissions"] = refused.accepted
    return response


async def _apply(fault: Fault, request: Request, state: EmulatorState) -> Response | None:
    if fault.kind == "latency":
        await anyio.sleep(fault.seconds)
        return None
    if fault.kind == "empty_list":
        request.scope[EMPTY_LIST_FLAG] = True
        return None
    if fault.kind == "timeout":
        await anyio.sleep(fault.seconds or 30.0)
        return fail(504, "We couldn't respond to your request in time.")
    if fault.kind == "unauthorized":
        return fail(401, "Bad credentials")
    if fault.kind == "rate_limit":
        response = fail(fault.status or 403, "API rate limit exceeded for user ID 1.")
        response.headers["x-ratelimit-remaining"] = "0"
        response.headers["x-ratelimit-reset"] = str(int(state.clock() + fault.seconds))
        return response
    if fault.kind == "secondary_rate_limit":
        response = fail(fault.status or 403, SECONDARY_MESSAGE)
        response.headers["retry-after"] = str(int(fault.seconds))
        return response
    return fail(fault.status or 500, "Server Error")


def _metered(response: Response, budget: RateBudget) -> Response:
    headers = response.headers
    headers.setdefault("x-ratelimit-limit", str(budget.limit))
    headers.setdefault("x-ratelimit-remaining", str(max(0, budget.remaining)))
    headers.setdefault("x-ratelimit-reset", str(int(budget.reset_epoch)))
    headers.setdefault("x-ratelimit-used", str(budget.limit - max(0, budget.remaining)))
    headers.setdefault("x-ratelimit-resource", "core")
    headers.setdefault("x-github-api-version-selected", "2022-11-28")
    return response


async def _authenticated_user(request: Request) -> Response:
    state = emulator(request)
    base = str(request.base_url).rstrip("/")
    login = state.bot_login
    created = objects.iso(state.now())
    data = objects.user(base, login, state.user_id(login), "Bot") | {
        "user_view_type": "private",
        "name": login,
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": created,
        "updated_at": created,
        "private_gists": 0,
        "total_private_repos": len(state.repos),
        "owned_private_repos": 0,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": True,
    }
    return JSONResponse(data)


async def _rate_limit(request: Request) -> Response:
    state = emulator(request)
    budget = state.budget if _bearer(request) is not None else state.anonymous_budget
    core = {
        "limit": budget.limit,
        "remaining": max(0, budget.remaining),
        "reset": int(budget.reset_epoch),
        "used": budget.limit - max(0, budget.remaining),
    }
    searches = 30 if budget is state.budget else 10
    search = {"limit": searches, "remaining": searches, "reset": int(budget.reset_epoch), "used": 0}
    return JSONResponse({"resources": {"core": core, "search": search}, "rate": core})
