"""HTTP health checks that cannot be turned against the network Setpoint runs in.

Health URLs come from desired state, which many people can edit; unchecked, a URL such as
http://169.254.169.254/ would make Setpoint fetch cloud credentials or probe internal
services for whoever wrote it. So every target, and every redirect target, is resolved
once, refused if it is not a public address (unless the operator allow-listed the host),
and then connected to by that vetted address: a second DNS answer cannot swap it.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import anyio
import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]

_CGNAT = ip_network("100.64.0.0/10")
_NAT64 = ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    url: str
    status: int | None
    reason: str
    elapsed_ms: float
    # What the answer said it runs: `X-Setpoint-*` headers and `SETPOINT_*` keys of a JSON
    # body, as env names (`SETPOINT_GENERATION`); a health check with `expectIdentity`
    # compares them with what was planned.
    reported: Mapping[str, str] = field(default_factory=dict)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the host resolves to, without blocking the event loop."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def blocked_reason(address: str) -> str | None:
    """Why an address is not a public target, or None when it is."""
    ip = ip_address(address.split("%", 1)[0])
    if isinstance(ip, IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that IPv4 address.
        embedded: IPv4Address | None = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip.teredo:
            embedded = ip.teredo[1]
        if embedded is None and ip in _NAT64:
            embedded = IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = blocked_reason(str(embedded))
            if inner:
                return f"{inner} (inside {ip})"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, IPv4Address) and ip in _CGNAT, "carrier-grade NAT"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not publicly routable"),
    )
    for matched, name in checks:
        if matched:
            return f"{name} address {ip}"
    return None


def _shown(url: httpx.URL) -> str:
    # A health URL may carry basic-auth credentials; results and audit records must not.
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


class _Refused(Exception):
    target: httpx.URL | None = None  # set when a redirect led to the refused address


async def _vetted_addresses(url: httpx.URL, allowed: set[str], resolve: Resolver) -> list[str]:
    if url.scheme not in _DEFAULT_PORTS:
        raise _Refused(f"only http and https URLs are checked, not {url.scheme or 'no scheme'}")
    host = url.host.lower()
    if not host:
        raise _Refused("the URL has no host")
    try:
        literal: str | None = str(ip_address(host))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve(
                url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[url.scheme]
            )
        except OSError as error:
            raise _Refused(f"could not resolve {host}: {error.strerror or error}") from None
        if not addresses:
            raise _Refused(f"{host} resolved to no address")
    if host in allowed:
        return addresses
    for address in addresses:
        reason = blocked_reason(address)
        if reason:
            raise _Refused(
                f"refused {host}: {reason} is not a public target; allow-list the host to check it"
            )
    return addresses


async def _fetch(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[str]
) -> tuple[httpx.Response, dict[str, str]]:
    """GET by a vetted address, keeping the Host header and TLS name of the URL. Returns the
    (closed) answer and the identity it reported."""
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    last: httpx.ConnectError | None = None
    for address in addresses:
        pinned = url.copy_with(host=address.split("%", 1)[0])
        request = client.build_request(
            "GET", pinned, headers={"Host": url.netloc.decode("ascii")}, extensions=extensions
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as error:
            last = error
            continue
        try:
            reported = await _reported(response)
        finally:
            await response.aclose()  # never read an unbounded body
        return response, reported
    assert last is not None
    raise last


# A JSON body longer than this is not read for the identity it reports.
_REPORT_BODY_LIMIT = 16 * 1024
_REPORTED_PREFIX = "SETPOINT_"


async def _reported(response: httpx.Response) -> dict[str, str]:
    """What the answer says it runs: `X-Setpoint-*` headers, and `SETPOINT_*` keys of a
    small JSON body, by their env names (`X-Setpoint-Generation` -> SETPOINT_GENERATION)."""
    found = {
        name[2:].upper().replace("-", "_"): value[:200]
        for name, value in response.headers.items()
        if name.lower().startswith("x-setpoint-")
    }
    if "json" not in response.headers.get("content-type", ""):
        return found
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > _REPORT_BODY_LIMIT:
            return found
    try:
        document = json.loads(body)
    except ValueError:
        return found
    if isinstance(document, dict):
        for key, value in document.items():
            if str(key).startswith(_REPORTED_PREFIX) and isinstance(value, str | int):
                found.setdefault(str(key), str(value)[:200])
    return found


class _TooManyRedirects(Exception):
    def __init__(self, target: httpx.URL, status: int) -> None:
        self.target, self.status = target, status


@dataclass
class _Hops:
    """Follows redirects one vetted hop at a time: each hop's address is checked anew."""

    client: httpx.AsyncClient
    allowed: set[str]
    resolve: Resolver
    expect_status: int
    max_redirects: int

    async def follow(self, target: httpx.URL) -> tuple[int, httpx.URL, dict[str, str]]:
        for hop in range(self.max_redirects + 1):
            try:
                addresses = await _vetted_addresses(target, self.allowed, self.resolve)
            except _Refused as refused:
                if hop == 0:
                    raise
                redirect = _Refused(f"redirected to {_shown(target)}: {refused}")
                redirect.target = target
                raise redirect from None
            response, reported = await _fetch(self.client, target, addresses)
            status = response.status_code
            location = response.headers.get("location")
            if status == self.expect_status or not (response.is_redirect and location):
                return status, target, reported
            if hop == self.max_redirects:
                raise _TooManyRedirects(target, status)
            target = target.join(location)
        raise AssertionError("unreachable: the loop returns or raises")


async def check_http(
    url: str,
    *,
    expect_status: int = 200,
    timeout: float = 5.0,
    allow_hosts: Collection[str] = (),
    max_redirects: int = 3,
    resolver: Resolver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> HealthResult:
    """GET `url` and compare the status; failures are results, never exceptions."""
    started = time.perf_counter()
    allowed = {host.lower().strip("[]") for host in allow_hosts}
    resolve = resolver or system_resolver
    current = url

    reported: dict[str, str] = {}

    def result(ok: bool, status: int | None, reason: str) -> HealthResult:
        elapsed = (time.perf_counter() - started) * 1000
        return HealthResult(ok, current, status, reason, round(elapsed, 1), reported)

    try:
        target = httpx.URL(url)
        current = _shown(target)
        with anyio.fail_after(timeout):
            # trust_env=False: a proxy from the environment would connect by name, unvetted.
            async with httpx.AsyncClient(
                transport=transport, trust_env=False, follow_redirects=False, timeout=timeout
            ) as client:
                hops = _Hops(client, allowed, resolve, expect_status, max_redirects)
                status, target, reported = await hops.follow(target)
                current = _shown(target)
    except _TooManyRedirects as too_many:
        current = _shown(too_many.target)
        return result(False, too_many.status, f"more than {max_redirects} redirects")
    except _Refused as refused:
        if refused.target is not None:
            current = _shown(refused.target)
        return result(False, None, str(refused))
    except (TimeoutError, httpx.TimeoutException):
        return result(False, None, f"timed out after {timeout:g}s")
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as error:
        return result(False, None, f"request failed: {str(error) or type(error).__name__}")
    if status != expect_status:
        return result(False, status, f"status {status}, expected {expect_status}")
    return result(True, status, "ok")
