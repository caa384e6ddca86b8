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

While a pass loads its context and reads the outside world (`heap_frozen`), what was there
before (the fleet, its kinds and lanes: most of a large fleet's heap) is left out of every
collection instead: the collector stays on, so what the reads leave in cycles is still
freed as they go, but a full collection that falls in the reads no longer walks the whole
fleet (0.46 s of a 10,000-lane first plan's 5 s). A pause that ends meanwhile leaves what it made frozen too, and all of it
goes to the oldest generation when the last freeze ends.
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
_freezes = _Pauses()  # `was_enabled` unused: a freeze leaves the collector on or off


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
                with _freezes.lock:
                    if _freezes.count == 0:
                        gc.unfreeze()
                gc.enable()


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Every object alive now is left out of collections until the block ends (nested and
    concurrent blocks share one freeze, lifted when the last ends). Objects frozen are still
    freed by reference counting; only a cycle among them waits for the freeze to end."""
    with _freezes.lock:
        _freezes.count += 1
        gc.freeze()
    try:
        yield
    finally:
        with _freezes.lock:
            _freezes.count -= 1
            if _freezes.count == 0:
                gc.unfreeze()
