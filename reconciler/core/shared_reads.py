"""Reads the batches of one loop pass share: one preflight per kind, one listing per client.

The loop surveys its lanes in batches; each survey would otherwise preflight every kind and
list every Dokploy project again (the listing is the same for every batch of a quiet pass).
The loop makes one `SharedReads` per pass and audit head (`loop/contexts.py`) and lends it
to each batch's survey (`sharing`); a kind reads through `once`, which answers from the
memo while one is lent and calls through otherwise. So a plan from the CLI, and every
apply's re-observation before its side effects (Invariant 6), always read afresh.

Why the audit head keys it: every apply writes its intent to the audit trail before its
side effect, so while the head has not moved, nothing Setpoint did has changed what a
listing shows since it was read. A change made outside Setpoint in the meantime is caught as
any other: the apply re-reads and refuses a stale plan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import anyio

T = TypeVar("T")


@dataclass
class SharedReads:
    """What was read for one pass, by key; the first caller of a key reads, the others wait
    for its answer. A read that raised is not kept: the next caller reads again."""

    reads: int = 0  # how many reads went through (for tests and the benchmark)
    _answers: dict[Hashable, Any] = field(default_factory=dict)
    _locks: dict[Hashable, anyio.Lock] = field(default_factory=dict)

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            if key not in self._answers:
                self._answers[key] = await read()
                self.reads += 1
            return cast(T, self._answers[key])


_lent: ContextVar[SharedReads | None] = ContextVar("setpoint_shared_reads", default=None)


@contextmanager
def sharing(reads: SharedReads | None) -> Iterator[None]:
    """Lend `reads` to the reads made inside the block (and the tasks it starts)."""
    token = _lent.set(reads)
    try:
        yield
    finally:
        _lent.reset(token)


async def once(key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
    """`read()`, or the pass's answer to `key` when a pass lent its reads."""
    reads = _lent.get()
    if reads is None:
        return await read()
    return await reads.get(key, read)
