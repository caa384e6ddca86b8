"""Run the API on uvicorn, with companion tasks (the loop) beside it in one task group.

`run_service(app, host, port, companions=[...])`: the socket is bound first, so a port in
use is one clear error before anything starts; uvicorn then serves on it and handles
SIGTERM and SIGINT itself: it stops accepting, lets in-flight requests finish (up to
`GRACEFUL_SHUTDOWN_SECONDS`) and runs the app's shutdown. Once it has, the companions are
cancelled: each must treat cancellation as "stop cleanly" (the loop finishes or records its
in-flight work as interrupted). A companion that fails stops the server too, so a service
never runs on with half of itself dead.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio
import uvicorn
from fastapi import FastAPI

from reconciler.errors import CannotListen

log = logging.getLogger("setpoint.serve")

Companion = Callable[[], Coroutine[Any, Any, None]]
GRACEFUL_SHUTDOWN_SECONDS = 30


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket, or one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on accepted connections (see demo/loopback).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


async def run_service(
    app: FastAPI, host: str, port: int, companions: Sequence[Companion] = ()
) -> None:
    sock = bind(host, port)
    config = uvicorn.Config(
        app,
        log_config=None,  # the project's logging (with secret redaction), not uvicorn's
        access_log=False,  # request counts and latency are in /metrics
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    try:
        async with anyio.create_task_group() as group:
            for companion in companions:
                group.start_soon(companion)
            log.info("serving the API on %s:%s", host, port)
            await server.serve(sockets=[sock])
            group.cancel_scope.cancel()  # the server has stopped: stop the companions
    finally:
        sock.close()
