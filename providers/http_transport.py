"""A lean HTTP/1.1 transport for a client's many small keep-alive calls (issue 26).

httpx's default transport (httpcore's pool on anyio streams) cost about 0.75 ms of CPU per
request on a reused loopback connection here: the pool re-checks every connection on every
request and every release, and each read and write goes through anyio's stream and cancel
scope layers. The same exchange framed by h11 on asyncio streams costs about 0.12 ms. A
first apply of 200 lanes makes about 1,900 calls, so that difference is most of the HTTP
share of its CPU.

`KeepAliveTransport` is an `httpx.AsyncBaseTransport`: it takes an `httpx.Request` and
answers an `httpx.Response`, whether an `httpx.AsyncClient` sends through it or, as the
Dokploy client does, `http_core.send_built` hands it a request built whole; both read only
httpx's exception classes. What it keeps from httpcore:

- every phase is bounded by the request's own timeouts (connect, read, write), raising
  `httpx.ConnectTimeout`, `ReadTimeout` or `WriteTimeout`; a refused or failed connect is
  `httpx.ConnectError`, so `send` still knows such a request was never sent;
- an idle connection is reused only while the server cannot have closed it: not past
  `keepalive_expiry` (httpcore's 5 s, which servers match), and not once the server's
  close has arrived (its socket readable, or the stream at its end);
- a connection whose exchange did not end cleanly (an error, a cancellation, a response
  that closes it) is closed, never reused.

It does not queue: callers bound how many requests are in flight (`http_core.send`'s
`slots`); it keeps at most `max_idle` idle connections per origin. Plain HTTP and HTTPS
(verified with httpx's default context); no HTTP/2, no proxies (a client given a transport
reads no proxy from the environment either). asyncio only, as Setpoint runs.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h11
import httpx

__all__ = ["KEEPALIVE_EXPIRY_SECONDS", "KeepAliveTransport"]

KEEPALIVE_EXPIRY_SECONDS = 5.0
_READ_SIZE = 64 * 1024

Origin = tuple[str, str, int]


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()

    def usable_after_idle(self, now: float, expiry: float) -> bool:
        if now - self.idle_since > expiry or self.writer.is_closing() or self.reader.at_eof():
            return False
        return not _readable(self.writer)


def _readable(writer: asyncio.StreamWriter) -> bool:
    """Whether an idle connection's socket has something to read: the server closed it, or
    sent what no request asked for. Either way it must not carry another request."""
    sock = writer.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams, framed by h11, with idle connections kept per origin."""

    def __init__(
        self,
        *,
        max_idle: int,
        keepalive_expiry: float = KEEPALIVE_EXPIRY_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_idle < 1:
            raise ValueError("keep at least one idle connection")
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._clock = clock
        self._idle: dict[Origin, list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        origin = (request.url.scheme, request.url.host, _port(request.url))
        connection = self._take_idle(origin) or await self._connect(origin, timeouts.get("connect"))
        try:
            response, reusable = await _exchange(
                connection, request, timeouts.get("read"), timeouts.get("write")
            )
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._give_back(origin, connection)
        else:
            connection.close()
        return response

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _take_idle(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        now = self._clock()
        while connections:
            connection = connections.pop()  # the most recently used: the least likely closed
            if connection.usable_after_idle(now, self._expiry):
                return connection
            connection.close()
        return None

    def _give_back(self, origin: Origin, connection: _Connection) -> None:
        connection.idle_since = self._clock()
        connections = self._idle.setdefault(origin, [])
        connections.append(connection)
        if len(connections) > self._max_idle:
            connections.pop(0).close()

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        tls = self._tls() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("connect timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"connect failed: {type(exc).__name__}") from None
        return _Connection(reader, writer)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context


def _port(url: httpx.URL) -> int:
    if url.port is not None:
        return url.port
    return 443 if url.scheme == "https" else 80


async def _exchange(
    connection: _Connection,
    request: httpx.Request,
    read_timeout: float | None,
    write_timeout: float | None,
) -> tuple[httpx.Response, bool]:
    """Send `request` and read its whole response; whether the connection may be reused."""
    await _send_request(connection, request, write_timeout)
    answer, body = await _read_response(connection, read_timeout)
    protocol = connection.protocol
    reusable = protocol.our_state is h11.DONE and protocol.their_state is h11.DONE
    if reusable:
        protocol.start_next_cycle()
    response = httpx.Response(
        answer.status_code,
        headers=answer.headers.raw_items(),
        stream=httpx.ByteStream(body),
        request=request,
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(answer.reason)},
    )
    return response, reusable


async def _send_request(
    connection: _Connection, request: httpx.Request, write_timeout: float | None
) -> None:
    protocol = connection.protocol
    body = await request.aread()
    try:
        head = h11.Request(
            method=request.method, target=request.url.raw_path, headers=request.headers.raw
        )
        parts = [protocol.send(head)]
        if body:
            parts.append(protocol.send(h11.Data(data=body)))
        parts.append(protocol.send(h11.EndOfMessage()))
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from None
    try:
        async with asyncio.timeout(write_timeout):
            connection.writer.write(b"".join(part for part in parts if part))
            await connection.writer.drain()
    except TimeoutError:
        raise httpx.WriteTimeout("write timed out") from None
    except OSError as exc:
        raise httpx.WriteError(f"write failed: {type(exc).__name__}") from None


async def _read_response(
    connection: _Connection, read_timeout: float | None
) -> tuple[h11.Response, bytes]:
    answer: h11.Response | None = None
    chunks: list[bytes] = []
    while True:
        event = await _next_event(connection, read_timeout)
        if isinstance(event, h11.Response):
            answer = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            raise httpx.RemoteProtocolError("the server closed the connection without answering")
        # an InformationalResponse (1xx) is passed over: the final answer follows
    assert answer is not None  # h11 gives the response head before any body or end
    return answer, b"".join(chunks)


async def _next_event(connection: _Connection, read_timeout: float | None) -> h11.Event:
    protocol = connection.protocol
    while True:
        try:
            event = protocol.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from None
        if event is not h11.NEED_DATA:
            return event  # type: ignore[return-value]  # h11 types its sentinels loosely
        try:
            async with asyncio.timeout(read_timeout):
                data = await connection.reader.read(_READ_SIZE)
        except TimeoutError:
            raise httpx.ReadTimeout("read timed out") from None
        except OSError as exc:
            raise httpx.ReadError(f"read failed: {type(exc).__name__}") from None
        try:
            protocol.receive_data(data)  # b"": the server closed its side
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from None
