"""Refusals audited so that a flood of them cannot flood the audit trail.

Every refused request is counted (metrics) and audited, but a source sending 300 bad
tokens must not write 300 records. Per source (the client's address), kind of refusal
(`api_denied`, `webhook_refused`) and reason, the first refusal of a minute is recorded as
it happened; the others of that minute are only counted, and once the minute is over one
record sums them up (`summary: true`, `count`, the minute it covers). So a source costs at
most two records per reason per minute, however fast it sends. The reasons are a short
fixed list; the sources tracked at once are capped, and past the cap new sources share one
`other` window.

The windows live in the process (each replica keeps its own, which is what bounds its own
writes) and use the runtime's clock. A minute's summary is written when any later refusal
arrives after that minute, or when the service stops (`flush`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from reconciler.records import audit
from reconciler.records.audit import AuditEntry
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread

WINDOW_SECONDS = 60.0
MAX_SOURCES = 10_000  # windows held at once; past it, new sources share one
OTHER_SOURCES = "other"

_Key = tuple[str, AuditEvent, str]  # source, event, reason


@dataclass
class _Window:
    started: float
    actor: str
    lane: str | None
    suppressed: int = 0  # refusals in this window not recorded one by one


@dataclass
class RefusalAudit:
    """Decides which refusals are recorded, and sums up the rest (see the module doc)."""

    clock: Callable[[], float]
    window_seconds: float = WINDOW_SECONDS
    max_sources: int = MAX_SOURCES
    _windows: dict[_Key, _Window] = field(default_factory=dict)

    def admit(
        self,
        event: AuditEvent,
        source: str,
        reason: str,
        actor: str,
        lane: str | None,
        data: Mapping[str, Any],
    ) -> list[AuditEntry]:
        """What to record for this refusal: the summaries of minutes now over, and the
        refusal itself when it is its source's first of the minute (pure but for the
        clock and the windows)."""
        now = self.clock()
        entries = self._close(now, everything=False)
        key = self._key(source, event, reason)
        window = self._windows.get(key)
        if window is not None:
            window.suppressed += 1
            return entries
        self._windows[key] = _Window(started=now, actor=actor, lane=lane)
        full = {**data, "source": key[0]}
        entries.append(AuditEntry(event=event, actor=actor, lane=lane, data=full))
        return entries

    def now(self) -> datetime:
        """The clock's moment as the records' time (`Runtime.now` of the same clock)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def flush(self) -> list[AuditEntry]:
        """Every open window's summary (the service is stopping)."""
        return self._close(self.clock(), everything=True)

    def _key(self, source: str, event: AuditEvent, reason: str) -> _Key:
        key = (source, event, reason)
        if key in self._windows or len(self._windows) < self.max_sources:
            return key
        return (OTHER_SOURCES, event, reason)

    def _close(self, now: float, *, everything: bool) -> list[AuditEntry]:
        over = [
            key
            for key, window in self._windows.items()
            if everything or now - window.started >= self.window_seconds
        ]
        entries = []
        for key in over:
            window = self._windows.pop(key)
            if window.suppressed:
                entries.append(self._summary(key, window))
        return entries

    def _summary(self, key: _Key, window: _Window) -> AuditEntry:
        source, event, reason = key
        data = {
            "reason": reason,
            "source": source,
            "summary": True,
            "count": window.suppressed,
            "since": datetime.fromtimestamp(window.started, UTC).isoformat(),
            "window_seconds": self.window_seconds,
        }
        return AuditEntry(event=event, actor=window.actor, lane=window.lane, data=data)


async def record_refusal(
    engine: Engine,
    refusals: RefusalAudit,
    event: AuditEvent,
    *,
    source: str,
    actor: str,
    data: Mapping[str, Any],
    lane: str | None = None,
) -> None:
    """Audit one refusal as `refusals` decides: `data["reason"]` says which it was."""
    entries = refusals.admit(event, source, str(data["reason"]), actor, lane, data)
    if entries:
        await in_thread(audit.record_many, engine, entries, at=refusals.now())


async def flush_refusals(engine: Engine, refusals: RefusalAudit) -> None:
    entries = refusals.flush()
    if entries:
        await in_thread(audit.record_many, engine, entries, at=refusals.now())
