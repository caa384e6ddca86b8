"""Fault injection: make chosen routes slow, failing, unauthorized, rate limited or empty.

A fault matches on method and a glob over the path (`/repos/*/pulls`), fires with
probability `rate` (drawn from the emulator's seeded generator, so runs repeat), and
`times` bounds how often it fires (None: until cleared).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

FaultKind = Literal[
    "latency",  # sleep `seconds`, then answer normally
    "timeout",  # sleep `seconds` (default 30) and answer 504: the client should give up first
    "error",  # answer `status` (default 500) with a GitHub-style error body
    "unauthorized",  # 401 Bad credentials
    "rate_limit",  # primary limit: 403, x-ratelimit-remaining 0, reset in `seconds`
    "secondary_rate_limit",  # 403 (or `status` 429) with retry-after `seconds`
    "empty_list",  # a list endpoint answers an empty list
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


@dataclass
class Fault:
    kind: FaultKind
    method: str = "*"
    path: str = "*"
    status: int | None = None
    seconds: float = 0.0
    rate: float = 1.0
    times: int | None = None
    id: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        method_ok = self.method == "*" or self.method.upper() == method.upper()
        return method_ok and fnmatchcase(path, self.path)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: list[Fault] = []
        self._next_id = 0

    def add(
        self,
        kind: FaultKind,
        *,
        method: str = "*",
        path: str = "*",
        status: int | None = None,
        seconds: float = 0.0,
        rate: float = 1.0,
        times: int | None = None,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self._next_id += 1
        fault = Fault(kind, method, path, status, seconds, rate, times, id=self._next_id)
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> None:
        self._faults = [f for f in self._faults if f.id != fault_id]

    def clear(self) -> None:
        self._faults.clear()

    def all(self) -> list[Fault]:
        return list(self._faults)

    def firing(self, method: str, path: str) -> list[Fault]:
        """The faults that apply to this request; each call counts against `times`."""
        fired: list[Fault] = []
        for fault in self._faults:
            if not fault.matches(method, path):
                continue
            if fault.times is not None and fault.fired >= fault.times:
                continue
            if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                continue
            fault.fired += 1
            fired.append(fault)
        return fired
