"""Health checks reach the public targets they are meant for and refuse internal ones.

Only loopback is used: a tiny HTTP server on 127.0.0.1, names resolved by a fake resolver.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from reconciler.health import blocked_reason, check_http

NAMES = {
    "app.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "10.0.0.7"],
    "public.test": ["93.184.216.34"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return NAMES[host]


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        _Handler.seen.append((self.path, self.headers.get("Host", "")))
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path.startswith("/status/"):
            self.send_response(int(self.path.rsplit("/", 1)[1]))
        elif self.path.startswith("/to?"):
            self.send_response(302)
            self.send_header("Location", self.path.split("?", 1)[1])
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def _running_server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(_running_server: int) -> int:
    _Handler.seen = []
    return _running_server


async def test_allow_listed_loopback_target_is_checked(server: int) -> None:
    result = await check_http(
        f"http://app.test:{server}/healthz", allow_hosts=["app.test"], resolver=fake_resolver
    )
    assert result.ok and result.status == 200 and result.reason == "ok"
    assert result.elapsed_ms >= 0
    # Connected by address, but the service saw the name it is configured for.
    assert _Handler.seen == [("/healthz", f"app.test:{server}")]


async def test_the_same_target_without_allow_list_is_refused_unvisited(server: int) -> None:
    result = await check_http(f"http://app.test:{server}/healthz", resolver=fake_resolver)
    assert not result.ok and result.status is None
    assert "loopback address 127.0.0.1" in result.reason
    literal = await check_http(f"http://127.0.0.1:{server}/healthz")
    assert not literal.ok and "loopback" in literal.reason
    assert _Handler.seen == []


async def test_ip_literal_can_be_allow_listed(server: int) -> None:
    result = await check_http(f"http://127.0.0.1:{server}/", allow_hosts=["127.0.0.1"])
    assert result.ok


def _must_not_connect(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"connected to {request.url}")


async def test_cloud_metadata_address_is_refused() -> None:
    transport = httpx.MockTransport(_must_not_connect)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://metadata.test/"):
        result = await check_http(url, resolver=fake_resolver, transport=transport)
        assert not result.ok and "link-local address 169.254.169.254" in result.reason


async def test_a_name_with_any_private_address_is_refused() -> None:
    transport = httpx.MockTransport(_must_not_connect)
    result = await check_http("http://mixed.test/", resolver=fake_resolver, transport=transport)
    assert not result.ok and "private address 10.0.0.7" in result.reason


async def test_redirect_to_a_private_address_is_refused(server: int) -> None:
    base = f"http://app.test:{server}"
    for target in ("http://169.254.169.254/latest/meta-data/", "http://metadata.test/"):
        result = await check_http(
            f"{base}/to?{target}", allow_hosts=["app.test"], resolver=fake_resolver
        )
        assert not result.ok and result.status is None
        assert result.reason.startswith(f"redirected to {target}")
        assert "link-local" in result.reason and result.url == target


async def test_redirects_within_allowed_hosts_are_followed_to_a_limit(server: int) -> None:
    base = f"http://app.test:{server}"
    followed = await check_http(
        f"{base}/to?/ready", allow_hosts=["app.test"], resolver=fake_resolver
    )
    assert followed.ok and followed.url == f"{base}/ready"
    looping = await check_http(
        f"{base}/loop", allow_hosts=["app.test"], resolver=fake_resolver, max_redirects=2
    )
    assert not looping.ok and looping.reason == "more than 2 redirects"
    assert [path for path, _ in _Handler.seen].count("/loop") == 3


async def test_wrong_status_is_reported(server: int) -> None:
    result = await check_http(
        f"http://app.test:{server}/status/503", allow_hosts=["app.test"], resolver=fake_resolver
    )
    assert not result.ok and result.status == 503
    assert result.reason == "status 503, expected 200"
    expected = await check_http(
        f"http://app.test:{server}/status/204",
        expect_status=204,
        allow_hosts=["app.test"],
        resolver=fake_resolver,
    )
    assert expected.ok


async def test_timeout_is_reported_not_raised(server: int) -> None:
    started = time.perf_counter()
    result = await check_http(
        f"http://app.test:{server}/slow",
        timeout=0.2,
        allow_hosts=["app.test"],
        resolver=fake_resolver,
    )
    assert not result.ok and result.reason == "timed out after 0.2s"
    assert time.perf_counter() - started < 0.9  # returned before the server answered


async def test_network_failures_are_results() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = await check_http(f"http://127.0.0.1:{port}/", allow_hosts=["127.0.0.1"])
    assert not refused.ok and refused.reason.startswith("request failed")
    unknown = await check_http("http://nowhere.test/", resolver=fake_resolver)
    assert not unknown.ok and unknown.reason.startswith("could not resolve nowhere.test")


async def test_only_http_and_https_are_checked() -> None:
    for url in ("file:///etc/passwd", "ftp://public.test/", "gopher://public.test/"):
        result = await check_http(url, resolver=fake_resolver)
        assert not result.ok and "only http and https" in result.reason


async def test_https_connects_to_the_vetted_address_with_the_name_for_tls() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    result = await check_http(
        "https://probe:s3cr3t-pass@public.test/health",
        resolver=fake_resolver,
        transport=httpx.MockTransport(answer),
    )
    assert result.ok and "s3cr3t-pass" not in result.url
    (request,) = seen
    assert request.url.host == "93.184.216.34"
    assert request.headers["host"] == "public.test"
    assert request.extensions["sni_hostname"] == "public.test"


async def test_the_identity_an_answer_reports_is_read_from_headers_and_a_small_json_body() -> None:
    answers = {
        "/headers": httpx.Response(200, headers={"X-Setpoint-Generation": "0123abcd"}),
        "/json": httpx.Response(
            200, json={"SETPOINT_IMAGE_DIGEST": "sha256:ab", "status": "ok", "other": 1}
        ),
        "/big": httpx.Response(200, json={"SETPOINT_GENERATION": "g", "padding": "x" * 20_000}),
        "/text": httpx.Response(200, text='{"SETPOINT_GENERATION": "g"}'),
    }

    async def reported(path: str) -> dict[str, str]:
        result = await check_http(
            f"https://public.test{path}",
            resolver=fake_resolver,
            transport=httpx.MockTransport(lambda request: answers[request.url.path]),
        )
        assert result.ok, result
        return dict(result.reported)

    assert await reported("/headers") == {"SETPOINT_GENERATION": "0123abcd"}
    assert await reported("/json") == {"SETPOINT_IMAGE_DIGEST": "sha256:ab"}
    assert await reported("/big") == {}  # never read past a small bound
    assert await reported("/text") == {}  # only a JSON answer's body is read


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - a value under test, nothing binds to it
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::1",
        "64:ff9b::a9fe:a9fe",
        "fd00:ec2::254",
    ],
)
def test_internal_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(address) is None
