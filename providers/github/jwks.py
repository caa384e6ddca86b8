"""A JSON Web Key Set fetched over async HTTP and cached.

An unknown `kid` triggers a refresh (GitHub rotates its keys), but at most once per
`min_refresh_seconds`, so a flood of tokens with made-up key ids cannot turn into a
flood of requests to the issuer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import httpx
import jwt

log = logging.getLogger(__name__)


class JwksUnavailable(Exception):
    """No key set could be fetched and none is cached."""


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient | None,
        timeout_seconds: float,
        min_refresh_seconds: float,
        ttl_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._url = url
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout_seconds)
        self._timeout = timeout_seconds
        self._min_refresh = min_refresh_seconds
        self._ttl = ttl_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = anyio.Lock()
        self.fetch_count = 0

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._ttl
        if stale or kid not in self._keys:
            await self._refresh(kid)
        return self._keys.get(kid)

    async def _refresh(self, kid: str) -> None:
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._ttl
            if not stale and kid in self._keys:
                return  # another task refreshed while we waited
            recently = (
                self._attempted_at is not None and now - self._attempted_at < self._min_refresh
            )
            if recently and self._keys:
                return
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, TimeoutError) as exc:
                log.warning("cannot fetch JWKS from %s: %s", self._url, type(exc).__name__)
                if not self._keys:
                    raise JwksUnavailable(self._url) from None
                return
            self._keys = keys
            self._fetched_at = now

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        self.fetch_count += 1
        with anyio.fail_after(self._timeout):
            response = await self._http.get(self._url)
        response.raise_for_status()
        document = response.json()
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            # Only RSA signing keys can verify RS256; anything else is ignored.
            if not isinstance(entry, dict) or entry.get("kty") != "RSA":
                continue
            if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
            except jwt.PyJWKError:
                continue
        if not keys:
            raise ValueError("JWKS has no usable RSA keys")
        return keys
