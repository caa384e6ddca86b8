"""A process that has come and gone, for the tests of holders whose process died."""

from __future__ import annotations

import subprocess
import sys

from reconciler.records import leases


def dead_process() -> tuple[int, int | None]:
    """The pid and start time of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = leases.process_started(child.pid)
    child.kill()
    child.wait()
    return child.pid, started
