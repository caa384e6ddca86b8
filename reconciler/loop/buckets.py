"""A rate limit per provider: a token bucket in front of every request a client sends.

The bucket refills `rate` tokens a second up to `burst`; a request takes one token, waiting
for it when there is none. It is installed through the provider client's public
`add_request_hook`, so it counts every call the kinds make (reads, writes, deploy polls)
without any kind knowing about it. The limit is per process: with several replicas, divide the
provider's budget between them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

import anyio
import httpx

from providers.http_core import HookedClient


class TokenBucket:
    """Spaces real requests in real time (monotonic), not on the runtime's clock: a rate
    limit is about the provider's load now. Tests bring a `clock` and a `sleep` that moves it."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._at = clock()
        self._lock = anyio.Lock()
        self.waited = 0.0  # seconds callers spent waiting, for tests and metrics

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> float:
        """Tokens a request could take now without waiting (fractions refill over time)."""
        self._refill()
        return self._tokens

    async def take(self) -> None:
        """Take one token, waiting until there is one (callers queue in turn)."""
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                self.waited += wait
                await self._sleep(wait)
                self._refill()
            self._tokens -= 1

    async def on_request(self, _request: httpx.Request) -> None:
        await self.take()


def install_rate_limits(
    providers: Mapping[str, object], rates: Mapping[str, float], burst: float
) -> dict[str, TokenBucket]:
    """Put a bucket in front of each named provider's requests; returns them by provider.
    A provider that sends no HTTP requests (an SSH host adapter) offers no hook and gets none."""
    buckets: dict[str, TokenBucket] = {}
    for name, rate in rates.items():
        provider = providers.get(name)
        if not isinstance(provider, HookedClient):
            continue
        bucket = TokenBucket(rate, burst)
        provider.add_request_hook(bucket.on_request)
        buckets[name] = bucket
    return buckets
