"""Reading GitHub's rate-limit signals and deciding how long to wait.

GitHub has a primary budget per token (`x-ratelimit-remaining` / `x-ratelimit-reset`)
and secondary limits against bursts (403 or 429, usually with `retry-after`). A
rate-limited request was not processed, so it is safe to send again after the wait,
even a POST. We wait only up to a cap; beyond it the caller gets GitHubRateLimited
and can reschedule the work instead of holding a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from providers.http_core import parse_retry_after

# GitHub's guidance for a secondary limit without retry-after: wait at least a minute.
SECONDARY_DEFAULT_WAIT = 60.0


@dataclass(frozen=True)
class RateLimitSnapshot:
    limit: int | None
    remaining: int | None
    reset_epoch: float | None
    resource: str | None

    @property
    def reset_at(self) -> datetime | None:
        if self.reset_epoch is None:
            return None
        return datetime.fromtimestamp(self.reset_epoch, tz=UTC)


@dataclass(frozen=True)
class RateLimitHit:
    """A response that says "slow down": how long GitHub wants us to wait."""

    wait_seconds: float
    secondary: bool
    retry_after: float | None
    snapshot: RateLimitSnapshot


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def snapshot(headers: httpx.Headers) -> RateLimitSnapshot:
    return RateLimitSnapshot(
        limit=_int(headers.get("x-ratelimit-limit")),
        remaining=_int(headers.get("x-ratelimit-remaining")),
        reset_epoch=_float(headers.get("x-ratelimit-reset")),
        resource=headers.get("x-ratelimit-resource"),
    )


def classify(response: httpx.Response, now: float) -> RateLimitHit | None:
    """Return how to wait if `response` is a rate-limit refusal, else None.

    A 403 alone is not a rate limit (it is usually a missing permission); it counts only
    with `remaining: 0`, a `retry-after`, or GitHub's "secondary rate limit" message.
    """
    if response.status_code not in (403, 429):
        return None
    snap = snapshot(response.headers)
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    primary_exhausted = snap.remaining == 0
    secondary = not primary_exhausted and (
        response.status_code == 429
        or retry_after is not None
        or "secondary rate limit" in response.text.lower()
    )
    if not primary_exhausted and not secondary:
        return None
    if retry_after is not None:
        wait = retry_after
    elif primary_exhausted and snap.reset_epoch is not None:
        wait = max(0.0, snap.reset_epoch - now)
    else:
        wait = SECONDARY_DEFAULT_WAIT
    return RateLimitHit(
        wait_seconds=wait, secondary=secondary, retry_after=retry_after, snapshot=snap
    )
