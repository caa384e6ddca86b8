"""One Dokploy procedure call over HTTP: timeout, error mapping, and the retry policy.

Retries are for failures where repeating the call cannot do harm: reads, and writes that
set state to a value (update, save*). Creates and deploys are never repeated here; a
caller that timed out on a create must look the object up before trying again.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import anyio
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from providers.dokploy.errors import (
    DokployConnectError,
    DokployError,
    DokployRateLimited,
    DokployTimeout,
    DokployTransientError,
    error_from_response,
)

log = logging.getLogger("providers.dokploy")

_EMPTY = object()


def normalise_base_url(url: str) -> str:
    """Dokploy's API lives under `/api`; accept the instance URL with or without it."""
    url = url.rstrip("/")
    return url if url.endswith("/api") else url + "/api"


class RpcCaller:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        retry_attempts: int,
        backoff_base: float,
        backoff_max: float,
        retry_after_cap: float,
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._attempts = max(1, retry_attempts)
        self._backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)
        self._retry_after_cap = retry_after_cap

    async def call(
        self,
        procedure: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool,
    ) -> Any:
        """Run one procedure; GET when `body` is None, else POST JSON.

        Returns the decoded JSON, or None for an empty body (Dokploy answers some
        mutations with nothing at all).
        """
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception(_safe_to_repeat if idempotent else _never_processed),
            reraise=True,
            before_sleep=lambda rs: _log_retry(procedure, rs),
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(procedure, query=query, body=body)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DokployRateLimited) and exc.retry_after is not None:
            # Honour the server's hint, capped, plus jitter so replicas do not stampede.
            jitter: float = self._backoff(state) * 0.1
            return min(exc.retry_after, self._retry_after_cap) + jitter
        return float(self._backoff(state))

    async def _once(
        self, procedure: str, *, query: dict[str, str] | None, body: dict[str, Any] | None
    ) -> Any:
        started = time.monotonic()
        method = "GET" if body is None else "POST"
        try:
            # httpx enforces its timeout only in network transports; the outer deadline
            # also bounds in-process transports and slow-drip responses.
            with anyio.fail_after(self._timeout + min(self._timeout, 1.0)):
                if body is None:
                    response = await self._http.get(f"/{procedure}", params=query)
                else:
                    response = await self._http.post(f"/{procedure}", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DokployConnectError(
                f"could not connect: {type(exc).__name__}", procedure=procedure
            ) from None
        except (httpx.TimeoutException, TimeoutError):
            log.warning("dokploy %s %s timed out after %.2fs", method, procedure, self._timeout)
            raise DokployTimeout(
                f"no answer within {self._timeout:g}s", procedure=procedure
            ) from None
        except httpx.TransportError as exc:
            # The exception text may include the URL; never the request (it has the key).
            raise DokployTransientError(
                f"connection failed: {type(exc).__name__}", procedure=procedure
            ) from None
        elapsed = time.monotonic() - started
        log.debug("dokploy %s %s -> %s in %.3fs", method, procedure, response.status_code, elapsed)
        decoded = _decode(response)
        if response.is_success:
            if decoded is _EMPTY:
                return None
            if decoded is _NOT_JSON:
                raise DokployError(
                    "answered 200 with a body that is not JSON (is the URL Dokploy's?)",
                    procedure=procedure,
                    http_status=response.status_code,
                )
            return decoded
        raise error_from_response(
            procedure,
            response.status_code,
            decoded if isinstance(decoded, dict) else None,
            response.headers.get("retry-after"),
        )


_NOT_JSON = object()


def _decode(response: httpx.Response) -> Any:
    if not response.content.strip():
        return _EMPTY
    try:
        return json.loads(response.content)
    except ValueError:
        return _NOT_JSON


def _safe_to_repeat(exc: BaseException) -> bool:
    return isinstance(exc, DokployTransientError | DokployRateLimited)


def _never_processed(exc: BaseException) -> bool:
    # A 429 or a refused connection means Dokploy did not act on the request, so even a
    # create may be sent again. A timeout or a 5xx may hide a completed mutation: no retry.
    return isinstance(exc, DokployRateLimited | DokployConnectError)


def _log_retry(procedure: str, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else math.nan
    log.warning(
        "dokploy %s attempt %d failed (%s); retrying in %.2fs",
        procedure,
        state.attempt_number,
        type(exc).__name__,
        wait,
    )
