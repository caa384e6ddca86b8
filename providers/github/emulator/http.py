"""Response helpers shared by the emulator's routes: GitHub-style errors and pagination."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from providers.github.emulator import objects
from providers.github.emulator.state import EmulatorState

EMPTY_LIST_FLAG = "github_emulator_empty_list"


def emulator(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def fail(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(objects.error(message, **extra), status_code=status)


def not_found() -> JSONResponse:
    return fail(404, "Not Found")


def invalid(message: str, *, field: str | None = None, code: str = "invalid") -> JSONResponse:
    errors = [{"resource": "Request", "code": code, **({"field": field} if field else {})}]
    return fail(422, message, errors=errors)


async def body_of(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return fail(400, "Problems parsing JSON")
    if not isinstance(data, dict):
        return fail(400, "Body should be a JSON object")
    return data


def page(
    request: Request,
    items: list[Any],
    *,
    wrap: str | None = None,
) -> JSONResponse:
    """One page of `items`, with GitHub's `Link` header and `per_page` (max 100)."""
    if request.scope.get(EMPTY_LIST_FLAG):
        items = []
    try:
        per_page = max(1, min(100, int(request.query_params.get("per_page", 30))))
        number = max(1, int(request.query_params.get("page", 1)))
    except ValueError:
        return invalid("Invalid pagination parameter")
    start = (number - 1) * per_page
    chunk = items[start : start + per_page]
    last = max(1, -(-len(items) // per_page))
    links = []

    def url(n: int) -> str:
        return str(request.url.include_query_params(page=n, per_page=per_page))

    if number < last:
        links += [f'<{url(number + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if number > 1:
        links += [f'<{url(1)}>; rel="first"', f'<{url(min(number - 1, last))}>; rel="prev"']
    headers = {"Link": ", ".join(links)} if links else {}
    content: Any = {"total_count": len(items), wrap: chunk} if wrap else chunk
    return JSONResponse(content, headers=headers)
