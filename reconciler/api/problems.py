"""Errors as RFC 9457 problem details (`application/problem+json`), never a traceback.

Every refusal is an `ApiRefused` carrying its status, title and detail; a malformed request
says which field, never the value it held; anything else is a bug: logged (redacted) and
answered 500 with nothing of it in the body. `Guard` is the outermost ASGI layer, so even
an error inside another middleware is answered this way.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.errors import ApiRefused
from reconciler.secret_values import redact

log = logging.getLogger("setpoint.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://setpoint.dev/problems/"


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: what every error answer is (for the OpenAPI document)."""

    type: str = Field(description=f"{PROBLEM_BASE}<kind>, e.g. {PROBLEM_BASE}no_grant")
    title: str
    status: int
    detail: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route's error answers."""
    schema = {"schema": ProblemDetails.model_json_schema()}
    return {
        status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM_MEDIA_TYPE: schema}}
        for status in statuses
    }


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    text = redact(json.dumps(body, default=str))
    return Response(text, status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def refused_response(exc: ApiRefused) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.problem, exc.title, exc.detail, headers=headers)


def _field_errors(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:10]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


async def _on_refused(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiRefused)
    return refused_response(exc)


async def _on_invalid(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem(422, "invalid_request", "invalid request", _field_errors(exc))


async def _on_http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    title = HTTPStatus(exc.status_code).phrase.lower()
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, title.replace(" ", "_"), title, detail, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiRefused, _on_refused)
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(HTTPException, _on_http)


def internal_error() -> Response:
    return problem(500, "internal", "internal error", "the server failed; see its log")


class Guard:
    """Answers any exception the app lets out with a bare 500 problem, and logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("request failed: %s: %s", type(exc).__name__, redact(str(exc)))
            log.debug("request failure", exc_info=True)
            if not started:
                await internal_error()(scope, receive, send)
