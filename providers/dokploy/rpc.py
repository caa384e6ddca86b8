"""One Dokploy procedure call over HTTP: the request shape, the answer, the error mapping.

The deadline, the transport failures and the retry rule live in providers/http_core.py.
Which calls may be repeated is Dokploy's own decision, made per procedure in client.py:
reads and writes that set state to a value (update, save*) are idempotent; creates and
deploys are not, so they are repeated only after a 429 or a refused connection. A caller
that timed out on a create must look the object up before trying again.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx

from providers.dokploy.errors import (
    DokployAddressError,
    DokployAnswerLost,
    DokployConnectError,
    DokployError,
    DokployRateLimited,
    DokployTimeout,
    DokployTransientError,
    error_from_response,
)
from providers.http_core import (
    ConnectFailed,
    RetryPolicy,
    TimedOut,
    TransportFailure,
    UnusableAddress,
    send_built,
    with_retries,
)
from providers.urgency import Slots

log = logging.getLogger("providers.dokploy")

_EMPTY = object()


def normalise_base_url(url: str) -> str:
    """Dokploy's API lives under `/api`; accept the instance URL with or without it."""
    url = url.rstrip("/")
    return url if url.endswith("/api") else url + "/api"


class RpcCaller:
    """Calls procedures on one Dokploy API client under one timeout and retry policy."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        transport: httpx.AsyncBaseTransport,
        timeout: float,
        retry: RetryPolicy,
        slots: Slots | None = None,
    ) -> None:
        # `http` is where the base URL, the headers, the timeouts and the request hooks are
        # kept; each call is built whole here and handed to `transport` (`send_built`).
        self._http = http
        self._transport = transport
        self._slots = slots
        self._timeouts = {"timeout": http.timeout.as_dict()}
        self._timeout = timeout
        self._retry = retry
        # Each procedure's absolute URL, built once: httpx parses a relative URL twice
        # per request to join it to the base (issue 26).
        self._urls: dict[str, httpx.URL] = {}
        # Seconds spent on calls Dokploy answered 429 and on the waits its Retry-After
        # asked for: a deploy's wait does not count them against its timeout.
        self.rate_limited_seconds = 0.0

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
        limited = False

        async def attempt() -> Any:
            nonlocal limited
            started = time.monotonic()
            try:
                return await self._once(procedure, query=query, body=body)
            except DokployRateLimited:
                limited = True
                self.rate_limited_seconds += time.monotonic() - started
                raise

        async def sleep(seconds: float) -> None:
            nonlocal limited
            started = time.monotonic()
            await anyio.sleep(seconds)
            if limited:
                self.rate_limited_seconds += time.monotonic() - started
            limited = False

        return await with_retries(
            attempt,
            idempotent=idempotent,
            policy=self._retry,
            label=f"dokploy {procedure}",
            sleep=sleep,
        )

    def _request(
        self, procedure: str, method: str, query: dict[str, str] | None, body: Any
    ) -> httpx.Request:
        """The request as httpx's client would build it, header for header and byte for
        byte, for a fraction of the CPU: the URL is parsed once per procedure (a query
        joined as text, not through httpx's params), and the headers httpx would add are
        written here, so `httpx.Request` runs none of its own preparation (issue 26)."""
        url = self._url(procedure)
        if query:
            url = httpx.URL(f"{url}?{urlencode(query)}")
        headers = [(b"Host", url.netloc), *self._http.headers.raw]
        content = b""
        if body is not None:
            # httpx's own JSON encoding of `json=`, so the body is the same bytes.
            content = json.dumps(
                body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers += [
                (b"Content-Length", str(len(content)).encode()),
                (b"Content-Type", b"application/json"),
            ]
        request = httpx.Request(
            method,
            url,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions=self._timeouts,
        )
        request.read()  # the body is known: a transport or a hook may read `content`
        return request

    def _url(self, procedure: str) -> httpx.URL:
        url = self._urls.get(procedure)
        if url is None:
            base = self._http.base_url  # always ends in "/"
            url = self._urls[procedure] = base.copy_with(
                raw_path=base.raw_path + procedure.encode("ascii")
            )
        return url

    async def _once(
        self, procedure: str, *, query: dict[str, str] | None, body: dict[str, Any] | None
    ) -> Any:
        started = time.monotonic()
        method = "GET" if body is None else "POST"
        try:
            request = self._request(procedure, method, query if body is None else None, body)
            response = await send_built(
                self._transport,
                request,
                timeout=self._timeout,
                hooks=self._http.event_hooks["request"],
                slots=self._slots,
            )
        except UnusableAddress as failure:
            raise DokployAddressError(
                f"not a usable address ({failure})", procedure=procedure
            ) from None
        except TransportFailure as failure:
            error = _transport_error(failure, procedure)
            if isinstance(error, DokployTimeout):
                log.warning("dokploy %s %s timed out after %.2fs", method, procedure, self._timeout)
            raise error from failure
        elapsed = time.monotonic() - started
        log.debug("dokploy %s %s -> %s in %.3fs", method, procedure, response.status_code, elapsed)
        decoded = _decode(response)
        if response.is_success:
            if decoded is _EMPTY:
                return None
            if decoded is _NOT_JSON and body is not None:
                # A write answered with a body cut short (or garbled): the work may be done,
                # as with an empty answer. The caller looks before it does anything again.
                raise DokployAnswerLost(
                    "answered 200 with a body that could not be read (cut short?)",
                    procedure=procedure,
                    http_status=response.status_code,
                )
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


def _transport_error(failure: TransportFailure, procedure: str) -> DokployTransientError:
    # A failed connect is DokployConnectError even when it timed out: what callers need to
    # know is that the request never reached Dokploy, so even a create may be repeated.
    if isinstance(failure, ConnectFailed):
        return DokployConnectError(str(failure), procedure=procedure)
    if isinstance(failure, TimedOut):
        return DokployTimeout(str(failure), procedure=procedure)
    return DokployTransientError(str(failure), procedure=procedure)
