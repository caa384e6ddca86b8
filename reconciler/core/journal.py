"""Group commit for the records an apply writes: what is written together commits together.

Lanes apply in parallel, and each action writes an intent before its side effect and a
result after it (Invariant 2). Committing each record alone makes the database's commit the
apply's bottleneck. The journal instead gathers the writes that arrive while a commit is in
flight and commits them all in the next transaction. A writer returns only once its own
writes are committed, so "the intent is durable before its side effect" still holds.

A write nothing waits on yet (a lane's last result) may linger: it waits a moment for
another writer's commit to take it along, and commits itself only if none came. It still
returns only once durable; only the caller waits longer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import anyio
from sqlalchemy.engine import Engine
from sqlmodel import Session

from reconciler.records import audit
from reconciler.records.audit import AuditEntry
from reconciler.records.database import in_thread

WriteUnit = Callable[[Session], Sequence[AuditEntry]]
"""Writes what it must beside the records (ownership changes, a lease proof) in the session
it is given, and returns the audit records to append. The journal appends every unit's
records of one transaction with one `append_entries`: the head moves once per commit."""


@dataclass
class _Pending:
    units: tuple[WriteUnit, ...]
    committed: bool = False
    error: BaseException | None = None
    settled: anyio.Event = field(default_factory=anyio.Event)  # committed, or failed


@dataclass
class Journal:
    engine: Engine
    clock: Callable[[], datetime]  # the runtime's (`Runtime.now`): each commit's records' time
    _queue: list[_Pending] = field(default_factory=list)
    _committing: anyio.Lock = field(default_factory=anyio.Lock)
    commits: int = 0  # transactions committed, for benchmarks and tests

    async def write(self, *units: WriteUnit, linger: float = 0.0) -> None:
        """Write `units` in one transaction (with whatever else is waiting); returns once
        committed. Raises what the units raised, never another writer's error.

        `linger`: seconds to wait first for another writer's commit to take `units` along;
        only for records no step waits on meanwhile, as the caller is held up that long."""
        mine = _Pending(units)
        self._queue.append(mine)
        if linger > 0:
            with anyio.move_on_after(linger):
                await mine.settled.wait()
        async with self._committing:
            if not mine.committed and mine.error is None:
                batch, self._queue = self._queue, []
                try:
                    await in_thread(self._commit, batch)
                finally:
                    for pending in batch:
                        pending.settled.set()
        if mine.error is not None:
            raise mine.error

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with audit.transaction(self.engine) as session:
                entries = [e for pending in batch for unit in pending.units for e in unit(session)]
                audit.append_entries(session, entries, at=self.clock())
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            # One writer's bad unit must not fail the others: commit each on its own.
            for pending in batch:
                self._commit([pending])
            return
        self.commits += 1
        for pending in batch:
            pending.committed = True
