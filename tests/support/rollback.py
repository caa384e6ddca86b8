"""What the rollback tests share: a workload whose health depends on the image that runs,
and reads of what runs and what was audited."""

from __future__ import annotations

from typing import Any

from providers.dokploy.emulator import Emulator
from reconciler.records.audit import list_records
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime
from tests.reconciler.conftest import Workload


class ImageHealth(Workload):
    """Answers 503 while a service runs one of the `bad` images."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__()
        self.emulator = emulator
        self.bad: set[str] = set()

    @property
    def status(self) -> int:
        live = self.emulator.summary()["live"].values()
        return 503 if any(service["dockerImage"] in self.bad for service in live) else 200

    @status.setter
    def status(self, value: int) -> None:
        pass


def running(emulator: Emulator, name: str) -> str:
    live = emulator.summary()["live"].values()
    return str(next(s["dockerImage"] for s in live if s["name"] == name))


def records(runtime: Runtime, event: AuditEvent) -> list[dict[str, Any]]:
    with session_scope(runtime.database) as session:
        return [
            {"actor": r.actor, "lane": r.lane, **(r.data or {})}
            for r in list_records(session, event=event)
        ]
