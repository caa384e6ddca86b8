"""Serve an ASGI app on loopback for the demo and end-to-end tests.

`serve` runs uvicorn in a background thread on a socket bound before the server starts, so
no other process can take the port in between; `serve_command` starts a `setpoint` command
in a child process, as an operator would, and waits until it answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while the app is served."""
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # when the socket says it is TCP; without it every answer waited ~40 ms (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((LOOPBACK, 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"loopback-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"could not serve on {LOOPBACK}:{port}")
            time.sleep(0.01)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def serve_command(
    args: Sequence[str], *, ready_path: str, port: int, startup_timeout: float = 20.0
) -> Iterator[str]:
    """Run `setpoint ARGS` in a child process; yield its base URL once `ready_path` answers."""
    command = [sys.executable, "-c", "from reconciler.cli.app import main; main()", *args]
    process = subprocess.Popen(  # noqa: S603 -- fixed argv, our own interpreter
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ}
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                httpx.get(url + ready_path, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
