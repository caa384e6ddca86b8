"""Waiting for a `setpoint serve` child process to answer, for the tests that start one."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Until `url/healthz` answers; raises if the process exits or `timeout` passes first
    (generous: a child that imports everything starts slowly on a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)
