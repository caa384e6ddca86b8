"""A clock that stands still until the test moves it: unlike `ShiftedClock` (the wall clock
moved forward), no time passes between two reads however loaded the machine is."""

from __future__ import annotations


class StillClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
