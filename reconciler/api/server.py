"""Run the API on uvicorn, with companion tasks (the loop) beside it in one task group.

`run_service(app, host, port, companions=[...])`: the socket is bound first, so a port in
use is one clear error before anything starts; uvicorn then serves on it and handles
SIGTERM and SIGINT itself: it stops accepting, lets in-flight requests finish (up to
`GRACEFUL_SHUTDOWN_SECONDS`) and runs the app's shutdown. Once it has, the companions are
cancelled, and `run_service` returns (`setpoint serve` exits 0): each must treat cancellation as "stop cleanly" (the loop finishes or records its
in-flight work as interrupted). A companion that fails stops the server too, so a service
never runs on with half of itself dead.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
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
        with _signals_stop_only_the_server():
            async with anyio.create_task_group() as group:
                for companion in companions:
                    group.start_soon(companion)
                log.info(
                    "listening on http://%s:%s",
                    host,
                    port,
                    extra={"fields": {"event": "listening", "host": host, "port": port}},
                )
                await server.serve(sockets=[sock])
                group.cancel_scope.cancel()  # the server has stopped: stop the companions
    finally:
        sock.close()


def _ignore(signum: int, frame: object) -> None:
    return None


@contextmanager
def _signals_stop_only_the_server() -> Iterator[None]:
    """uvicorn catches SIGTERM and SIGINT while it serves (that is the graceful stop), and
    once stopped raises the signal again for the handler that was there before it. With
    Python's defaults that handler would end the process on the spot, before the companions
    are cancelled cleanly; so, meanwhile, the handler before it is this one, which does
    nothing: the server has already stopped, and the companions stop next."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; uvicorn installs nothing here either
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _ignore) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
