"""Group commit for the records an apply writes: what is written together commits together.

Lanes apply in parallel, and each action writes an intent before its side effect and a
result after it (Invariant 2). Committing each record alone makes the database's commit the
apply's bottleneck. The journal instead gathers the writes that arrive while a commit is in
flight and commits them all in the next transaction. A writer returns only once its own
writes are committed, so "the intent is durable before its side effect" still holds.
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


@dataclass
class Journal:
    engine: Engine
    clock: Callable[[], datetime]  # the runtime's (`Runtime.now`): each commit's records' time
    _queue: list[_Pending] = field(default_factory=list)
    _committing: anyio.Lock = field(default_factory=anyio.Lock)
    commits: int = 0  # transactions committed, for benchmarks and tests

    async def write(self, *units: WriteUnit) -> None:
        """Write `units` in one transaction (with whatever else is waiting); returns once
        committed. Raises what the units raised, never another writer's error."""
        mine = _Pending(units)
        self._queue.append(mine)
        async with self._committing:
            if not mine.committed and mine.error is None:
                batch, self._queue = self._queue, []
                await in_thread(self._commit, batch)
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
