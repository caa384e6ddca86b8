"""Request bodies read with a bound, and answers written as redacted JSON.

The bound is checked against Content-Length before anything is read, and again while
reading (a chunked body has no length), so a sender can never make the server buffer or
hash more than the setting allows (Invariant 14).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from reconciler.errors import ApiRefused
from reconciler.secret_values import redact

ModelT = TypeVar("ModelT", bound=BaseModel)


def too_large(limit: int) -> ApiRefused:
    return ApiRefused(413, "body_too_large", "body too large", f"the body exceeds {limit} bytes")


def declared_too_large(request: Request, limit: int) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > limit


async def read_bounded(request: Request, limit: int) -> bytes:
    if declared_too_large(request, limit):
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(raw: bytes, model: type[ModelT]) -> ModelT:
    """The body as `model` (empty means all defaults); a bad one says which field, never
    the value it held."""
    try:
        data: Any = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ApiRefused(400, "malformed_body", "malformed body", "the body is not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(
            f"body.{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
            for e in exc.errors()[:10]
        )
        raise ApiRefused(422, "invalid_request", "invalid request", where) from None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON with every known secret value redacted, whatever slipped into `data`."""
    text = redact(json.dumps(data, default=str))
    return Response(text, status, headers=headers, media_type="application/json")
