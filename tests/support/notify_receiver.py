"""A local receiver for notifications: records each signed webhook POST, and can be told
to answer with an error status (a sink that is down)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from providers.notify.sinks import SIGNATURE_HEADER, sign


@dataclass
class Received:
    document: dict[str, Any]
    signed_ok: bool


@dataclass
class NotifyReceiver:
    secret: str
    status: int = 200
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    plain: list[dict[str, Any]] = field(default_factory=list)  # apprise's json:// posts

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/hook", self._hook, methods=["POST"]),
                Route("/apprise", self._apprise, methods=["POST"]),
            ]
        )

    async def _apprise(self, request: Request) -> JSONResponse:
        self.plain.append(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    async def _hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        if self.status >= 300:
            self.refused += 1
            return JSONResponse({"error": "down"}, status_code=self.status)
        signed_ok = request.headers.get(SIGNATURE_HEADER) == sign(self.secret, body)
        self.received.append(Received(json.loads(body), signed_ok))
        return JSONResponse({"ok": True})

    def items(self) -> list[dict[str, Any]]:
        return [item for r in self.received for item in r.document["items"]]
