"""The shared HTTP core: Retry-After, typed transport failures, and the retry rule.

The calls go through a tiny host adapter built the way providers/http_core.py documents
it, over httpx.MockTransport: no network. Sleeps are recorded, never slept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from providers.dokploy.errors import (
    DokployConnectError,
    DokployRateLimited,
    DokployTimeout,
    DokployTransientError,
)
from providers.github.errors import GitHubTimeout, GitHubTransientError
from providers.http_core import (
    ConnectFailed,
    ConnectTimedOut,
    RetryPolicy,
    TimedOut,
    TransientFailure,
    TransportFailure,
    is_server_error,
    may_repeat,
    parse_retry_after,
    send,
    send_built,
    with_retries,
)

NOW = 1_800_000_000.0
Handler = Callable[[httpx.Request], httpx.Response]

# -- Retry-After ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), ("0", 0.0), ("0.25", 0.25), (" 7 ", 7.0), ("-3", 0.0)],
)
def test_retry_after_in_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


# 1994-11-06 08:49:37 GMT, RFC 9110's example date, is 784111777 in epoch seconds.
EXAMPLE_DATE = 784111777.0


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate, what servers send
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 form
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime form: no zone, GMT by definition
        "Sun, 06 Nov 1994 08:49:37 -0000",  # RFC 5322's "zone not given"
    ],
)
def test_retry_after_as_an_http_date_counts_from_now(value: str) -> None:
    assert parse_retry_after(value, now=EXAMPLE_DATE - 90) == 90.0


def test_retry_after_date_in_another_zone_is_the_same_instant() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 10:49:37 +0200", now=EXAMPLE_DATE - 5) == 5.0
    assert parse_retry_after(formatdate(NOW + 90, usegmt=True), now=NOW) == 90.0


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after(formatdate(NOW - 600, usegmt=True), now=NOW) == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "  ", "soon", "nan", "inf", "-inf", "Sun, 31 Nov 1994 99:00:00 GMT"]
)
def test_unreadable_retry_after_is_unknown(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_retry_after_cap_bounds_both_forms() -> None:
    assert parse_retry_after("3600", cap=30.0) == 30.0
    assert parse_retry_after(formatdate(NOW + 3600, usegmt=True), now=NOW, cap=30.0) == 30.0
    assert parse_retry_after("5", cap=30.0) == 5.0


# -- one exchange ---------------------------------------------------------------------


def _http(handler: Callable[[httpx.Request], Any]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url="http://host.test", transport=httpx.MockTransport(handler), timeout=1.0
    )


def _raises(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("failed at http://host.test/secret-path?token=t", request=request)

    return handler


async def _failure_of(handler: Callable[[httpx.Request], Any], timeout: float) -> BaseException:
    async with _http(handler) as http:
        with pytest.raises(TransportFailure) as caught:
            await send(http, "GET", "/x", timeout=timeout)
    return caught.value


async def test_a_hanging_server_becomes_a_typed_timeout() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(5)
        return httpx.Response(200)

    with anyio.fail_after(2):  # the deadline is the timeout plus a grace of at most 1 s
        failure = await _failure_of(hang, timeout=0.05)
    assert isinstance(failure, TimedOut) and not isinstance(failure, ConnectFailed)
    assert failure.request_sent is True
    assert str(failure) == "no answer within 0.05s"


async def test_an_httpx_read_timeout_becomes_a_typed_timeout() -> None:
    failure = await _failure_of(_raises(httpx.ReadTimeout), timeout=1.0)
    assert type(failure) is TimedOut and failure.request_sent is True


async def test_a_connect_timeout_is_a_timeout_that_never_sent_the_request() -> None:
    failure = await _failure_of(_raises(httpx.ConnectTimeout), timeout=1.0)
    assert isinstance(failure, ConnectTimedOut)
    assert isinstance(failure, TimedOut) and isinstance(failure, ConnectFailed)
    assert failure.request_sent is False


async def test_a_refused_connection_never_sent_the_request() -> None:
    failure = await _failure_of(_raises(httpx.ConnectError), timeout=1.0)
    assert type(failure) is ConnectFailed and failure.request_sent is False
    assert str(failure) == "could not connect: ConnectError"


async def test_a_broken_connection_is_transient_and_keeps_the_url_out() -> None:
    failure = await _failure_of(_raises(httpx.RemoteProtocolError), timeout=1.0)
    assert type(failure) is TransportFailure and failure.request_sent is True
    assert str(failure) == "connection failed: RemoteProtocolError"
    assert failure.__cause__ is None and failure.__suppress_context__


# -- a request built whole, sent past httpx's client layer (`send_built`) -----------------


def _built(method: str = "GET", content: bytes = b"") -> httpx.Request:
    return httpx.Request(
        method,
        "http://host.test/x?token=t",
        content=content,
        extensions={"timeout": httpx.Timeout(1.0).as_dict()},
    )


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError, httpx.RemoteProtocolError],
)
async def test_a_built_request_fails_as_the_client_sent_one_does(
    error: type[httpx.TransportError],
) -> None:
    through_client = await _failure_of(_raises(error), timeout=1.0)
    with pytest.raises(TransportFailure) as caught:
        await send_built(httpx.MockTransport(_raises(error)), _built(), timeout=1.0)
    built = caught.value
    assert type(built) is type(through_client)
    assert built.request_sent is through_client.request_sent
    assert str(built) == str(through_client) and "token" not in str(built)


async def test_a_built_request_to_a_hanging_server_times_out_within_its_deadline() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(5)
        return httpx.Response(200)

    with anyio.fail_after(2), pytest.raises(TimedOut) as caught:
        await send_built(httpx.MockTransport(hang), _built(), timeout=0.05)
    assert str(caught.value) == "no answer within 0.05s"


async def test_a_built_request_runs_the_hooks_first_and_comes_back_read() -> None:
    order: list[str] = []

    async def hook(request: httpx.Request) -> None:
        order.append(f"hook {request.method}")

    def handler(request: httpx.Request) -> httpx.Response:
        order.append(f"sent {request.content.decode()}")
        return httpx.Response(503, content=b"busy", headers={"retry-after": "2"})

    response = await send_built(
        httpx.MockTransport(handler), _built("POST", b"body"), timeout=1.0, hooks=[hook, hook]
    )
    assert order == ["hook POST", "hook POST", "sent body"]
    assert response.status_code == 503 and response.content == b"busy"
    assert response.headers["retry-after"] == "2"


async def test_any_status_comes_back_as_a_response() -> None:
    async with _http(lambda request: httpx.Response(503)) as http:
        assert (await send(http, "POST", "/x", timeout=1.0, json={"a": 1})).status_code == 503
    assert is_server_error(503) and is_server_error(500)
    assert not is_server_error(429) and not is_server_error(404)


# -- the retry rule, through a host adapter -------------------------------------------


class HostError(Exception):
    """What a host adapter's own error tree looks like."""


class HostUnavailable(HostError, TransientFailure):
    """5xx: the host may have acted."""


class HostBusy(HostError, TransientFailure):
    """429: refused unprocessed."""

    request_sent = False

    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after
        super().__init__("busy")


class Host:
    """A minimal host adapter; `sent` is every request method, `slept` every wait."""

    def __init__(self, answers: list[httpx.Response | type[httpx.TransportError]]) -> None:
        self._answers = answers
        self.sent: list[str] = []
        self.slept: list[float] = []
        self.policy = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.method)
        answer = self._answers[min(len(self.sent), len(self._answers)) - 1]
        if isinstance(answer, httpx.Response):
            return answer
        raise answer("failed", request=request)

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    async def _once(self, http: httpx.AsyncClient, method: str) -> httpx.Response:
        response = await send(http, method, "/thing?q=1", timeout=1.0)
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise HostBusy(retry_after)
        if is_server_error(response.status_code):
            raise HostUnavailable(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise HostError(f"HTTP {response.status_code}")
        return response

    async def call(self, method: str, *, idempotent: bool) -> httpx.Response:
        async with _http(self._handle) as http:
            return await with_retries(
                lambda: self._once(http, method),
                idempotent=idempotent,
                policy=self.policy,
                label=f"host {method} /thing",
                sleep=self._sleep,
            )


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_transient_5xx_on_a_read_is_retried(status: int) -> None:
    host = Host([httpx.Response(status), httpx.Response(status), httpx.Response(200)])
    assert (await host.call("GET", idempotent=True)).status_code == 200
    assert host.sent == ["GET", "GET", "GET"]
    assert len(host.slept) == 2 and all(0 <= s <= 0.02 for s in host.slept)


async def test_a_read_gives_up_after_the_policy_attempts_with_the_last_failure() -> None:
    host = Host([httpx.Response(503)])
    with pytest.raises(HostUnavailable, match="HTTP 503"):
        await host.call("GET", idempotent=True)
    assert host.sent == ["GET"] * 3


async def test_a_429_on_a_read_waits_for_retry_after() -> None:
    host = Host([httpx.Response(429, headers={"retry-after": "7"}), httpx.Response(200)])
    assert (await host.call("GET", idempotent=True)).status_code == 200
    assert host.sent == ["GET", "GET"]
    [waited] = host.slept
    assert 7 <= waited <= 7 + 0.1 * host.policy.backoff_max  # the hint plus a little jitter


async def test_a_429_with_an_http_date_waits_until_then_and_long_hints_are_capped() -> None:
    soon = formatdate(time.time() + 3600, usegmt=True)
    host = Host([httpx.Response(429, headers={"retry-after": soon}), httpx.Response(200)])
    host.policy = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02, retry_after_cap=9)
    await host.call("GET", idempotent=True)
    [waited] = host.slept
    assert 9 <= waited <= 9 + 0.1 * host.policy.backoff_max


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(500), httpx.Response(503), httpx.ReadTimeout, httpx.RemoteProtocolError],
)
async def test_a_post_mutation_that_may_have_reached_the_host_is_never_retried(
    answer: httpx.Response | type[httpx.TransportError],
) -> None:
    host = Host([answer, httpx.Response(201)])
    with pytest.raises((HostUnavailable, TransportFailure)):
        await host.call("POST", idempotent=False)
    assert host.sent == ["POST"]
    assert host.slept == []


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(429, headers={"retry-after": "1"}), httpx.ConnectError, httpx.ConnectTimeout],
)
async def test_a_post_the_host_never_processed_is_sent_again(
    answer: httpx.Response | type[httpx.TransportError],
) -> None:
    host = Host([answer, httpx.Response(201)])
    assert (await host.call("POST", idempotent=False)).status_code == 201
    assert host.sent == ["POST", "POST"]


async def test_a_final_error_is_never_retried() -> None:
    host = Host([httpx.Response(404), httpx.Response(200)])
    with pytest.raises(HostError, match="HTTP 404"):
        await host.call("GET", idempotent=True)
    assert host.sent == ["GET"]


async def test_a_retry_is_logged_under_its_label(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="providers.http_core")
    host = Host([httpx.Response(502), httpx.Response(200)])
    await host.call("GET", idempotent=True)
    [record] = caplog.records
    assert record.getMessage().startswith("host GET /thing attempt 1 failed (HostUnavailable)")
    assert "q=1" not in caplog.text


def test_may_repeat_table() -> None:
    sent, unsent = HostUnavailable("x"), HostBusy(None)
    assert may_repeat(sent, idempotent=True) and not may_repeat(sent, idempotent=False)
    assert may_repeat(unsent, idempotent=True) and may_repeat(unsent, idempotent=False)
    assert not may_repeat(HostError("x"), idempotent=True)
    assert not may_repeat(ValueError("x"), idempotent=True)


def test_provider_errors_speak_the_core_rule() -> None:
    # What each client decided before the core existed, now read by `may_repeat`.
    cases: list[tuple[TransientFailure, bool]] = [
        (DokployTransientError("5xx"), True),
        (DokployTimeout("t"), True),
        (DokployConnectError("refused"), False),
        (DokployRateLimited("429", retry_after=1.0), False),
        (GitHubTransientError("5xx"), True),
        (GitHubTimeout("t"), True),
        (GitHubTransientError("refused", request_sent=False), False),
        (GitHubTimeout("connect", request_sent=False), False),
    ]
    for error, request_sent in cases:
        assert isinstance(error, TransientFailure)
        assert error.request_sent is request_sent, error
        assert may_repeat(error, idempotent=True)
        assert may_repeat(error, idempotent=False) is not request_sent


# -- the connection pool ----------------------------------------------------------------


async def test_a_client_opens_no_more_connections_than_its_pool_allows() -> None:
    """20 reads at once through a Dokploy client capped at 3 connections: the server sees at
    most 3 connections, and every read is answered (the others wait for a free one)."""
    from providers.dokploy.client import DokployClient

    open_now, most = 0, 0
    body = b'{"id": "u1", "email": "ops@example.com"}'

    async def serve(stream: anyio.abc.SocketStream) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            async with stream:
                while await _read_request(stream):
                    await anyio.sleep(0.02)  # slow enough that the reads overlap
                    head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n"
                    await stream.send(
                        head.encode() + b"content-type: application/json\r\n\r\n" + body
                    )
        finally:
            open_now -= 1

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 -- anyio, not Django
    async with anyio.create_task_group() as server:
        server.start_soon(listener.serve, serve)
        async with DokployClient(f"http://127.0.0.1:{port}", "k", max_connections=3) as client:
            answered = []

            async def read() -> None:
                answered.append(await client._query("user.get"))

            async with anyio.create_task_group() as reads:
                for _ in range(20):
                    reads.start_soon(read)
        server.cancel_scope.cancel()
    assert len(answered) == 20
    assert most == 3


async def _read_request(stream: anyio.abc.SocketStream) -> bool:
    """Read one bodiless request's head; False when the client closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return False
    return True
