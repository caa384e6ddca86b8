"""Keep Python's cycle collector out of a plan's build.

Building a large plan makes hundreds of thousands of young objects (pydantic actions and
changes, their JSON) that all live until the plan is stored; each generation-0 collection
re-scans every one of them, which was 62 % of a 10,000-lane plan's diff + plan CPU. None of
it makes reference cycles that need collecting before the build ends, so the collector waits
for the build's end. Nested and concurrent pauses (a plan stored in a worker thread while
another is diffed) share one pause: the collector is enabled again when the last of them
ends, and only if it was enabled before the first.

When the pause ends, what it made goes straight to the oldest generation (`gc.freeze()`
then `gc.unfreeze()`: two list splices) rather than being scanned by the first young
collection after it, which cost about a second per pause of a 10,000-lane plan: most of it
is freed by reference counting when the plan is dropped, and any cycle in it is still found
by the next full collection (nothing stays frozen).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = False


_pauses = _Pauses()


@contextmanager
def collector_paused() -> Iterator[None]:
    with _pauses.lock:
        if _pauses.count == 0:
            _pauses.was_enabled = gc.isenabled()
            gc.disable()
        _pauses.count += 1
    try:
        yield
    finally:
        with _pauses.lock:
            _pauses.count -= 1
            if _pauses.count == 0 and _pauses.was_enabled:
                gc.freeze()
                gc.unfreeze()
                gc.enable()


def set_aside_survivors() -> None:
    """Move every object alive now out of the collector's sight (`gc.freeze()`) until
    `take_back_survivors`: for what a long-lived structure was just built into (the loop's
    pass context: the desired fleet, the registry, the kinds), which every collection would
    otherwise scan again, a full one most of all. Objects set aside that die meanwhile are
    still freed by reference counting; a cycle among them waits for `take_back_survivors`
    and the next full collection after it. A plan's build (`collector_paused`) takes them
    back when it ends, which only ends the saving early."""
    gc.freeze()


def take_back_survivors() -> None:
    """What `set_aside_survivors` set aside goes to the oldest generation again."""
    gc.unfreeze()
