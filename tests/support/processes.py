"""A process that has come and gone, for the tests of holders whose process died, and what
such a death leaves behind mid-apply."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy.engine import Engine

from reconciler.records import leases, plan_store
from reconciler.runtime import utcnow


def dead_process() -> tuple[int, int | None]:
    """The pid and start time of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = leases.process_started(child.pid)
    child.kill()
    child.wait()
    return child.pid, started


def crash_mid_apply(engine: Engine, plan_id: str, lanes: list[str]) -> None:
    """What a SIGKILL mid-apply leaves behind: leases of a dead process, a plan `applying`."""
    pid, started = dead_process()
    holder = leases.Holder(label="ci:crashed", plan_id=plan_id, pid=pid, pid_started=started)
    for lane in lanes:
        assert leases.acquire(engine, lane, holder, ttl_seconds=600, clock=utcnow)
    assert plan_store.claim_for_apply(engine, plan_id)
