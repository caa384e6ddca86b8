"""One pass context for the loop's batches and requests, while nothing it was built from changes.

Building a context (the desired fleet, the ownership registry, the kinds) costs time linear
in the fleet; the loop's workers each need one per batch, and each workflow request one of
its own. A context is reused while what it was built from is the same: the stored desired
state, the ownership registry, and the interrupted plans whose unfinished creates and runs
it carries. It is not rebuilt because the audit head moved: on a busy loop the head moves
with every action, and keying on it made every batch and every request rebuild the context
in turn behind one lock (a workflow's request waited on up to 20 s of that, issue 23).

It is also built afresh at every timer tick, and once it is `MAX_AGE_SECONDS` old by
`Runtime.clock`: the kinds read the clock when they are built (a deploy's backoff, a
preview's grace period), so a reused context may only make a lane wait a little longer,
never act early.

The providers' reads the batches of a pass share (`core/shared_reads.py`) are keyed on the
audit head, since an apply writes its intent there before it changes anything outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from reconciler.core.planning import PassContext, load_context
from reconciler.core.shared_reads import SharedReads
from reconciler.records import audit, desired
from reconciler.records.database import in_thread, session_scope, table_of
from reconciler.records.ownership import OwnedObject
from reconciler.records.plan_store import PlanStatus, StoredPlan
from reconciler.runtime import Runtime

Version = tuple[object, ...]
# Long enough for a quiet pass over a large fleet on a loaded machine to build one context
# (a 1,000-lane pass took 12 s of wall time at load 10), short enough that a lane whose
# backoff ended is not kept waiting by a context's old clock for long.
MAX_AGE_SECONDS = 30.0


@dataclass(frozen=True)
class _Seen:
    head: int  # the audit head
    version: Version  # what a context is built from


def _ownership_version(session: Session) -> tuple[int, int, object]:
    """Changes whenever an ownership row is added, removed or rewritten (every write sets
    `updated_at`): how many rows, the sum of their ids, the newest write."""
    table = table_of(OwnedObject)
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(table.c.id), 0),
            sa.func.max(table.c.updated_at),
        )
    ).one()
    return int(row[0]), int(row[1]), row[2]


def _interrupted(session: Session) -> int:
    table = table_of(StoredPlan)
    count = session.execute(
        sa.select(sa.func.count()).where(table.c.status == PlanStatus.interrupted.value)
    ).scalar_one()
    return int(count)


def _seen(engine: Engine) -> _Seen:
    with session_scope(engine) as session:
        head = audit.head_seq(session)
        interrupted = _interrupted(session)
        # An interrupted plan's unfinished runs end when a later result is recorded, which
        # only the audit trail shows: while there are any, the head is part of the version.
        version = (
            desired.version(session),
            _ownership_version(session),
            interrupted,
            head if interrupted else None,
        )
        return _Seen(head, version)


@dataclass
class SharedContext:
    built: int = 0  # how many contexts were built, for tests and the benchmark
    _version: Version | None = None
    _built_at: float = 0.0
    _context: PassContext | None = None
    _lock: anyio.Lock = field(default_factory=anyio.Lock)
    # What the pass's batches read from providers, while the audit head stays where it was
    # when they were read (core/shared_reads.py).
    reads: SharedReads = field(default_factory=SharedReads)
    _reads_head: int | None = None

    async def get(self, runtime: Runtime) -> PassContext:
        async with self._lock:  # one build at a time: the others wait and share it
            # Read the version first: a change made while building shows as a new version
            # next time, so a context is never reused past a change it did not see.
            seen = await in_thread(_seen, runtime.database)
            if seen.head != self._reads_head:
                self.reads, self._reads_head = SharedReads(), seen.head
            now = runtime.clock()
            fresh = now - self._built_at < MAX_AGE_SECONDS
            if self._context is not None and seen.version == self._version and fresh:
                return self._context
            self._context = await load_context(runtime)
            self._version, self._built_at = seen.version, now
            self.built += 1
            return self._context

    def forget(self) -> None:
        """Build afresh next time (each timer tick: time moves preview grace periods on)."""
        self._context, self._version = None, None
        self.reads, self._reads_head = SharedReads(), None
