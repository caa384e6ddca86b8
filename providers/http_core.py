"""The HTTP core every provider client shares: deadlines, typed transport failures,
the retry rule for transient failures, and `Retry-After`.

Each client (Dokploy, GitHub, a host adapter under providers/hosts/) keeps its own base
URL, auth headers, status-to-exception mapping and exception tree. What must behave the
same for all of them lives here:

- `send` makes one HTTP exchange under a hard deadline and turns every httpx transport
  error into a `TransportFailure`: `ConnectFailed`, `TimedOut`, or both at once
  (`ConnectTimedOut`). Callers never see a raw httpx exception or its text, which may
  hold the URL.
- `TransientFailure` marks "may succeed if sent again". A provider's own transient
  errors (5xx, 429, wrapped transport failures) inherit it and say, through
  `request_sent`, whether the server may have acted on the request, and through
  `retry_after`, how long the server asked us to wait.
- `with_retries` runs an attempt again under a `RetryPolicy`: for an idempotent call on
  any transient failure, for any other call only when the request provably was not
  processed (`request_sent` False: connection refused, connect timeout, 429). A
  mutation that may have reached the server is never repeated blindly; the caller
  re-observes instead.
- `parse_retry_after` reads both forms of the header, delta-seconds and HTTP-date.

A host adapter needs nothing more than this::

    class HostError(Exception): ...
    class HostBusy(HostError, TransientFailure): ...  # its 5xx

    async def _once(http: httpx.AsyncClient, path: str) -> httpx.Response:
        response = await send(http, "GET", path, timeout=DEFAULT_TIMEOUT_SECONDS)
        if is_server_error(response.status_code):
            raise HostBusy(f"{path}: HTTP {response.status_code}")
        return response

    response = await with_retries(
        lambda: _once(http, "/status"),
        idempotent=True,
        policy=RetryPolicy(),
        label="host GET /status",
    )

A `TransportFailure` is itself transient, so an adapter may let it propagate as it is;
the Dokploy and GitHub clients wrap it in their own exception classes instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import anyio
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from providers.urgency import Slots

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "ConnectFailed",
    "ConnectTimedOut",
    "RetryPolicy",
    "Sleep",
    "TimedOut",
    "TransientFailure",
    "TransportFailure",
    "UnusableAddress",
    "is_server_error",
    "may_repeat",
    "parse_retry_after",
    "pool_limits",
    "send",
    "send_built",
    "with_retries",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
# Requests a client has in flight at most by default: a pass's bounded reads (8) beside an
# apply's lanes (8). httpcore scans every pooled connection on every request, so a pool
# sized for what is really in flight costs less CPU per request than httpx's 100.
DEFAULT_CONNECTIONS = 16

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


# -- failures -------------------------------------------------------------------------


class TransientFailure(Exception):
    """A failure that may go away if the call is made again later.

    A mixin for a provider's own exception classes: it adds no constructor, only two
    facts the retry rule reads. `request_sent` is False when the server cannot have acted
    on the request (it was never delivered, or it was refused unprocessed, as with a
    429); only then may a non-idempotent call be repeated. `retry_after` is the server's
    own advice in seconds, when it gave one.
    """

    request_sent: bool = True
    retry_after: float | None = None


class TransportFailure(TransientFailure):
    """No HTTP answer arrived: the connection failed, broke, or took too long.

    The message names the failure and at most the httpx exception's class, never its
    text (which may include the URL).
    """


class UnusableAddress(Exception):
    """The URL itself cannot be used (no scheme, say): a configuration error, never retried."""


class ConnectFailed(TransportFailure):
    """No connection could be made, so the request never reached the server."""

    request_sent = False


class TimedOut(TransportFailure):
    """No complete answer within the timeout; the server may have acted on the request."""


class ConnectTimedOut(ConnectFailed, TimedOut):
    """The connect phase timed out: both a timeout and a request that was never sent."""


RequestHook = Callable[[httpx.Request], Awaitable[None]]


@runtime_checkable
class HookedClient(Protocol):
    """A provider client that lets its owner watch every request it sends (the loop puts
    a rate limit in front of each provider this way, without reaching into the client)."""

    def add_request_hook(self, hook: RequestHook) -> None: ...


def add_request_hook(http: httpx.AsyncClient, hook: RequestHook) -> None:
    """Run `hook` before every request `http` sends, after the hooks it already has."""
    http.event_hooks["request"] = [*http.event_hooks["request"], hook]


def is_server_error(status: int) -> bool:
    """5xx: the server failed, possibly after acting on the request; worth another try."""
    # `>=` rather than a range: a status above 599 is no more final than a 5xx.
    return status >= 500


def pool_limits(in_flight: int) -> httpx.Limits:
    """A connection pool no larger than the requests a client has in flight (`send`'s
    `slots`), rather than httpx's 100."""
    if in_flight < 1:
        raise ValueError("a client needs at least one connection")
    return httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)


# -- one exchange ---------------------------------------------------------------------


def _deadline(timeout: float) -> float:
    # httpx enforces its timeout per phase, and only in network transports. The outer
    # deadline also bounds in-process transports and slow-drip bodies; the grace lets
    # httpx's own, more specific timeout (connect or read) fire first on a real network,
    # so a connect timeout is still known not to have sent the request.
    return timeout + min(timeout, 1.0)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    timeout: float,
    params: Mapping[str, str | int] | None = None,
    json: Any = None,
    slots: Slots | None = None,
) -> httpx.Response:
    """One request through `http`, bounded by `timeout`; any status comes back as is.

    `http` should be built with `httpx.Timeout(timeout)` so the network phases are bounded
    too. `slots` (as many as the client keeps connections): a request waits here for its
    turn (urgent ones first: `urgency.py`), outside its deadline, so it never queues inside
    the transport (httpcore's pool scans its waiting requests against every connection each
    time one moves). Raises a `TransportFailure` subclass when no answer arrived.
    """
    if slots is None:
        return await _send_now(http, method, url, timeout=timeout, params=params, json=json)
    async with slots:
        return await _send_now(http, method, url, timeout=timeout, params=params, json=json)


async def _send_now(
    http: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    timeout: float,
    params: Mapping[str, str | int] | None,
    json: Any,
) -> httpx.Response:
    try:
        with anyio.fail_after(_deadline(timeout)):
            return await http.request(method, url, params=params, json=json)
    except Exception as exc:
        failure = _failure_of(exc, timeout, address=str(http.base_url))
        if failure is None:
            raise
        raise failure from None


async def send_built(
    transport: httpx.AsyncBaseTransport,
    request: httpx.Request,
    *,
    timeout: float,
    hooks: Sequence[RequestHook] = (),
    slots: Slots | None = None,
) -> httpx.Response:
    """`send` for a request its caller built whole (absolute URL, every header, the
    `timeout` extension), handed straight to `transport` and read to its end.

    None of httpx's client layer runs: no base URL or header merging, no cookie jar, no
    redirects, no auth flow. That layer was a third of a Dokploy call's CPU (issue 26), and
    a client authenticated by a header, answered in JSON, needs none of it. `hooks` run
    before the request is sent, inside its deadline, as a client's request hooks do. The
    deadline, the failures raised and `slots` are `send`'s.
    """
    if slots is None:
        return await _send_built_now(transport, request, timeout=timeout, hooks=hooks)
    async with slots:
        return await _send_built_now(transport, request, timeout=timeout, hooks=hooks)


async def _send_built_now(
    transport: httpx.AsyncBaseTransport,
    request: httpx.Request,
    *,
    timeout: float,
    hooks: Sequence[RequestHook],
) -> httpx.Response:
    try:
        with anyio.fail_after(_deadline(timeout)):
            for hook in hooks:
                await hook(request)
            response = await transport.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            finally:
                await response.aclose()
            return response
    except Exception as exc:
        # The address without its query, which may hold what a log must not.
        failure = _failure_of(exc, timeout, address=str(request.url).split("?", 1)[0])
        if failure is None:
            raise
        raise failure from None


def _failure_of(exc: Exception, timeout: float, *, address: str) -> Exception | None:
    """What `send` raises for `exc`: a `TransportFailure` (or `UnusableAddress`) when it is
    httpx's transport error or the deadline; None when `exc` is to propagate as it is."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return UnusableAddress(f"{address}: {type(exc).__name__}")
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimedOut("could not connect: ConnectTimeout")
    if isinstance(exc, httpx.ConnectError):
        return ConnectFailed(f"could not connect: {type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return TimedOut(f"no answer within {timeout:g}s")
    if isinstance(exc, httpx.TransportError):
        return TransportFailure(f"connection failed: {type(exc).__name__}")
    return None


# -- Retry-After ----------------------------------------------------------------------


def parse_retry_after(
    value: str | None, *, now: float | None = None, cap: float | None = None
) -> float | None:
    """Seconds to wait from a `Retry-After` value, or None when absent or unreadable.

    Both forms of RFC 9110 are read: delta-seconds (fractions accepted, as some proxies
    send them) and an HTTP-date in any of its three formats, counted from `now` (epoch
    seconds, default the system clock). A date in the past or a negative number means "now": 0. `cap` bounds the
    result, so a hostile or broken header cannot park a worker for hours.
    """
    if value is None or not value.strip():
        return None
    seconds = _delta_seconds(value.strip())
    if seconds is None:
        seconds = _seconds_until(value.strip(), time.time() if now is None else now)
    if seconds is None:
        return None
    seconds = max(seconds, 0.0)
    return seconds if cap is None else min(seconds, cap)


def _delta_seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    # float() also reads "nan" and "inf", which are no advice at all.
    return seconds if math.isfinite(seconds) else None


def _seconds_until(value: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # HTTP-dates are GMT by definition; the asctime form and "-0000" name no zone.
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


# -- the retry rule -------------------------------------------------------------------


def may_repeat(failure: BaseException, *, idempotent: bool) -> bool:
    """Whether a call that failed with `failure` may be sent again.

    Only transient failures qualify. An idempotent call may always be repeated; any other
    call only when the server cannot have acted on it, because a timeout or a 5xx may
    hide a mutation that did happen.
    """
    if not isinstance(failure, TransientFailure):
        return False
    return idempotent or not failure.request_sent


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait: jittered exponential backoff, or the server's
    `retry_after` (capped at `retry_after_cap`) when the failure carries one."""

    attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_cap: float = 30.0

    def wait(self, state: RetryCallState) -> float:
        """Seconds to sleep before the next attempt (tenacity's `wait` hook)."""
        backoff = float(
            wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max)(state)
        )
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, TransientFailure) and failure.retry_after is not None:
            # Honour the server's hint, capped, plus a little jitter so that replicas
            # refused together do not all come back at the same instant.
            return min(failure.retry_after, self.retry_after_cap) + backoff * 0.1
        return backoff


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    idempotent: bool,
    policy: RetryPolicy,
    label: str,
    sleep: Sleep = anyio.sleep,
) -> T:
    """Await `attempt()` until it succeeds, `may_repeat` says no, or attempts run out.

    The last failure is raised as it is. `label` names the call in the retry log line
    (e.g. "dokploy project.all"); it must not hold a secret or a query string.
    """
    # The first attempt runs without tenacity's machinery: nearly every call succeeds at
    # once, and building it per call was a tenth of a Dokploy call's CPU (issue 26). A
    # failure worth repeating is handed to the same loop as its first attempt's outcome, so
    # the waits, the log lines and the count of attempts are what they always were.
    try:
        return await attempt()
    except Exception as failure:
        if policy.attempts <= 1 or not may_repeat(failure, idempotent=idempotent):
            raise
        first_failure = failure
    attempts = 0

    async def replaying_the_first() -> T:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise first_failure
        return await attempt()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=policy.wait,
        retry=retry_if_exception(lambda exc: may_repeat(exc, idempotent=idempotent)),
        sleep=sleep,
        reraise=True,
        before_sleep=lambda state: _log_retry(label, state),
    )
    async for try_ in retrying:
        with try_:
            return await replaying_the_first()
    raise AssertionError("unreachable: tenacity reraises the last failure")  # pragma: no cover


def _log_retry(label: str, state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else math.nan
    log.warning(
        "%s attempt %d failed (%s); retrying in %.2fs",
        label,
        state.attempt_number,
        type(failure).__name__,
        wait,
    )
