"""Work that goes first: what a caller is waiting for now, ahead of background work.

One process serves a workflow's request beside hundreds of scheduled lanes, and both queue
for a provider client's few connections. Queued in arrival order, a request's few reads
waited behind every scheduled lane's (issue 23: up to 0.8 s for a connection slot at 200
lanes). Within `urgent()` (and in the tasks started from it, which inherit it), a call
waiting for a slot goes before the calls that are not urgent; it never takes a slot from a
call that holds one.

It lives with the providers because their clients' connection slots (`Slots`) honour it;
the engine marks its workflow requests' work with it (`loop/engine.py`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType

import anyio

_URGENT: ContextVar[bool] = ContextVar("setpoint_urgent", default=False)


@contextmanager
def urgent() -> Iterator[None]:
    """Mark the work within (and the tasks it starts) as a caller's, which goes first."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


def is_urgent() -> bool:
    return _URGENT.get()


class Slots:
    """At most `total` holders at once (a client's connections); a freed slot goes to the
    longest-waiting urgent caller, else to the longest-waiting other one."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("slots need a total of at least 1")
        self.total = total
        self._held = 0
        self._urgent: deque[anyio.Event] = deque()
        self._others: deque[anyio.Event] = deque()

    @property
    def held(self) -> int:
        return self._held

    async def __aenter__(self) -> None:
        if self._held < self.total and not self._urgent and not self._others:
            self._held += 1
            return
        queue = self._urgent if is_urgent() else self._others
        turn = anyio.Event()
        queue.append(turn)
        try:
            await turn.wait()  # the slot is handed over with the event: `_held` stays
        except BaseException:
            if turn in queue:
                queue.remove(turn)
            else:  # handed a slot while being cancelled: give it on
                self._release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        for queue in (self._urgent, self._others):
            if queue:
                queue.popleft().set()
                return
        self._held -= 1
