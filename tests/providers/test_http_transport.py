"""The lean HTTP/1.1 transport (providers/http_transport.py) against a small server on
loopback: connections reused and not, whole answers, timeouts and refusals as http_core
reads them. Keep-alive expiry is moved through a `ShiftedClock`, never waited out."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from providers.dokploy.client import DokployClient
from providers.http_core import ConnectFailed, TimedOut, send
from providers.http_transport import KEEPALIVE_EXPIRY_SECONDS, KeepAliveTransport
from reconciler.runtime import ShiftedClock

Answer = Callable[[bytes, bytes], Awaitable[bytes | None]]  # (head, body) -> bytes, None: hang


def plain(body: bytes, *extra: str) -> bytes:
    head = [
        "HTTP/1.1 200 OK",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def echo(head: bytes, body: bytes) -> bytes:
    target = head.split(b" ", 2)[1].decode()
    return plain(json.dumps({"target": target, "body": body.decode()}).encode())


@dataclass
class Server:
    """Answers each request with `answer`; counts the connections it accepted."""

    answer: Answer = echo
    close_after_answer: bool = False
    connections: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                answer = await self.answer(head, body)
                if answer is None:  # never answer: the client's read timeout decides
                    await asyncio.Event().wait()
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:  # as a server whose keep-alive ran out
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        await writer.wait_closed()
        self.closed.set()


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[Server]:
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    async with listener:
        yield server


def client(server: Server, **transport: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        timeout=httpx.Timeout(5.0),
        transport=KeepAliveTransport(max_idle=4, **transport),  # type: ignore[arg-type]
    )


async def test_calls_share_one_connection_and_each_answer_is_whole() -> None:
    async with serving(Server()) as server, client(server) as http:
        first = await http.get("/project.all", params={"a": "1"})
        second = await http.post("/project.create", json={"name": "shop"})
        third = await http.get("/user.get")
    assert first.json() == {"target": "/project.all?a=1", "body": ""}
    assert json.loads(second.json()["body"]) == {"name": "shop"}
    assert third.json()["target"] == "/user.get"
    assert server.connections == 1


async def test_the_dokploy_client_sends_through_it_by_default() -> None:
    async def user(head: bytes, body: bytes) -> bytes:
        assert b"x-api-key: key" in head
        return plain(b'{"id": "u1", "email": "ops@example.com"}')

    server = Server(answer=user)
    async with serving(server), DokployClient(server.url, "key") as dokploy:
        await dokploy.preflight()
        await dokploy.preflight()
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_carries_no_request() -> None:
    # A server's keep-alive timeout closes the connection between two calls: the next call
    # must go out on a new connection, not fail on the dead one (a failed mutation is not
    # sent again blindly, so it would fail the action).
    async with serving(Server(close_after_answer=True)) as server, client(server) as http:
        await http.get("/one")
        await server.closed.wait()
        again = await http.get("/two")
    assert again.json()["target"] == "/two"
    assert server.connections == 2


async def test_an_idle_connection_past_its_keepalive_expiry_is_not_used_again() -> None:
    clock = ShiftedClock()
    async with serving(Server()) as server, client(server, clock=clock) as http:
        await http.get("/one")
        clock.advance(KEEPALIVE_EXPIRY_SECONDS - 1)
        await http.get("/two")
        assert server.connections == 1
        clock.advance(KEEPALIVE_EXPIRY_SECONDS + 1)
        await http.get("/three")
    assert server.connections == 2


async def test_an_answer_that_closes_the_connection_is_read_and_not_reused() -> None:
    async def closing(head: bytes, body: bytes) -> bytes:
        return plain(b'{"ok": true}', "connection: close")

    async with serving(Server(answer=closing)) as server, client(server) as http:
        assert (await http.get("/one")).json() == {"ok": True}
        assert (await http.get("/two")).json() == {"ok": True}
    assert server.connections == 2


async def test_a_chunked_and_compressed_answer_is_read_whole() -> None:
    document = json.dumps({"items": list(range(2000))}).encode()
    packed = gzip.compress(document)

    async def chunked(head: bytes, body: bytes) -> bytes:
        pieces = [packed[i : i + 1000] for i in range(0, len(packed), 1000)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
            b"content-encoding: gzip\r\ncontent-type: application/json\r\n\r\n" + framed
        )

    async with serving(Server(answer=chunked)) as server, client(server) as http:
        response = await http.get("/big")
        assert response.json() == {"items": list(range(2000))}
        assert (await http.get("/again")).json() == {"items": list(range(2000))}
    assert server.connections == 1


async def test_no_answer_in_time_is_a_timeout_and_that_connection_is_dropped() -> None:
    answered: list[bytes] = []

    async def first_hangs(head: bytes, body: bytes) -> bytes | None:
        answered.append(head)
        return None if len(answered) == 1 else await echo(head, body)

    server = Server(answer=first_hangs)
    async with serving(server), client(server) as http:
        with pytest.raises(TimedOut):
            await send(http, "POST", "/deploy", timeout=0.05, json={"id": "a1"})
        after = await send(http, "GET", "/user.get", timeout=5.0)
    assert after.json()["target"] == "/user.get"
    assert server.connections == 2


async def test_a_refused_connection_is_known_never_to_have_sent_the_request() -> None:
    async with serving(Server()) as server:
        url = server.url  # the listener is closed on leaving: nothing listens there now
    async with httpx.AsyncClient(base_url=url, transport=KeepAliveTransport(max_idle=1)) as http:
        with pytest.raises(ConnectFailed) as failure:
            await send(http, "POST", "/project.create", timeout=2.0, json={})
    assert failure.value.request_sent is False
