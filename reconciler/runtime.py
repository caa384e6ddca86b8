"""Everything one engine run needs, built once by the caller (CLI, loop, demo, tests).

Providers are held by name (`dokploy`, `github`, a host adapter): a deployment configures
the ones it has, and each kind asks for those it needs. `kinds` builds the lane kinds of a
pass; callers pass `reconciler.kinds.all_kinds`, tests may bring their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.engine import Engine

from reconciler.errors import ProviderNotConfigured
from reconciler.secret_values import StoreReader
from reconciler.settings import Settings

if TYPE_CHECKING:
    from reconciler.kinds.base import KindFactory

Progress = Callable[[str], None]
ProviderT = TypeVar("ProviderT")


def _quiet(_: str) -> None:
    return None


def utcnow() -> datetime:
    """The wall clock as an aware UTC datetime, for adapters and tests with no runtime at
    hand. The engine (core, kinds, records, loop) never reads it: it reads `Runtime.now()`,
    or a clock its caller passes (tests/test_architecture.py holds it to that)."""
    return datetime.now(UTC)


@dataclass
class ShiftedClock:
    """`time.time` moved by `offset` seconds: the demo and tests move time forward with it
    (a grace period passes at once) instead of waiting."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        """The same moment as an aware UTC datetime (what leases and records read)."""
        return datetime.fromtimestamp(self(), UTC)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Runtime:
    database: Engine
    settings: Settings
    actor: str
    kinds: KindFactory
    providers: Mapping[str, object] = field(default_factory=dict)
    environ: Mapping[str, str] | None = None  # where fromEnv secrets are read; None: os.environ
    secret_store: StoreReader | None = None  # where fromStore secrets are read
    progress: Progress = field(default=_quiet)
    # Seconds since the epoch: every time the engine reads (leases, queue claims, retry
    # times, plan expiry, a preview's grace period, a runner's idle window) comes from here,
    # so tests and the demo move time forward instead of waiting. `now()` is the same moment.
    clock: Callable[[], float] = field(default=time.time)
    # What every audit record of an apply carries beside its actor: who asked and why (the
    # operations a workflow's apply serves, the reason an operator gave). Set per apply with
    # `dataclasses.replace`, as `actor` is.
    attribution: Mapping[str, object] = field(default_factory=dict)
    # A loop comes back to a parked lane when it is due: its applies may answer "not yet"
    # (`Retry`) for a long wait they started (a build) instead of waiting it out. A one-shot
    # apply (the CLI, the review page, the demo) has no loop to come back, so it waits.
    parks_long_waits: bool = False

    def now(self) -> datetime:
        """The clock's moment as an aware UTC datetime (what records store)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def provider(self, name: str, expected: type[ProviderT]) -> ProviderT:
        client = self.providers.get(name)
        if client is None:
            raise ProviderNotConfigured(f"provider {name} is not configured")
        if not isinstance(client, expected):
            raise TypeError(f"provider {name} is a {type(client).__name__}, not {expected}")
        return client

    def has_provider(self, name: str) -> bool:
        return name in self.providers

    def secret_salt(self) -> str:
        """This installation's salt for secret fingerprints (made on first use)."""
        from reconciler.records.secret_store import installation_salt

        return installation_salt(self.database, self.now())
