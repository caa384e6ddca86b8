"""One pass context for the batches of an interval, while nothing it was built from changes.

Building a context (the desired fleet, the ownership registry, the kinds) costs time linear
in the fleet; the loop's workers each need one per batch, so a fleet of N lanes in batches
of B would pay it N/B times over. A context is reused as long as the audit head has not
moved (every plan, apply, adoption and forgetting writes audit records, so ownership cannot
change without it) and the stored desired state's version is the same; otherwise, and at
every timer tick, it is built afresh. A converged fleet therefore builds one per interval,
and a busy one builds one per batch, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
from sqlalchemy.engine import Engine

from reconciler.core.planning import PassContext, load_context
from reconciler.core.shared_reads import SharedReads
from reconciler.records import audit, desired
from reconciler.records.database import in_thread, session_scope
from reconciler.runtime import Runtime

Version = tuple[int, tuple[int, int, object]]


def _version(engine: Engine) -> Version:
    with session_scope(engine) as session:
        return audit.head_seq(session), desired.version(session)


@dataclass
class SharedContext:
    built: int = 0  # how many contexts were built, for tests and the benchmark
    _version: Version | None = None
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
            version = await in_thread(_version, runtime.engine)
            if version[0] != self._reads_head:
                self.reads, self._reads_head = SharedReads(), version[0]
            if self._context is not None and version == self._version:
                return self._context
            self._context = await load_context(runtime)
            self._version = version
            self.built += 1
            return self._context

    def forget(self) -> None:
        """Build afresh next time (each timer tick: time moves preview grace periods on)."""
        self._context, self._version = None, None
        self.reads, self._reads_head = SharedReads(), None
