"""The GitHub side of the client's HTTP: auth, API version, pagination, rate limits.

The deadline, the transport failures and the retry rule live in providers/http_core.py.
What is GitHub's own is decided here: GET, HEAD, PUT, DELETE and PATCH are idempotent
(our PATCHes set fields to values), so they are retried on any transient failure
(5xx, broken connections, timeouts); a POST only when it provably never reached GitHub
(connection refused, connect timeout). A POST that may have reached GitHub is never
repeated blindly; the caller re-observes instead. Rate limits have their own loop here,
because GitHub's budget headers say more than a plain 429.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx
from pydantic import SecretStr

from providers.github.config import web_url_for
from providers.github.errors import (
    GitHubConflict,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubTimeout,
    GitHubTransientError,
    GitHubUnauthorized,
    GitHubValidationFailed,
)
from providers.github.pagination import MAX_PAGES, PER_PAGE, next_link
from providers.github.ratelimit import RateLimitSnapshot, classify, snapshot
from providers.http_core import (
    DEFAULT_CONNECTIONS,
    DEFAULT_TIMEOUT_SECONDS,
    RequestHook,
    RetryPolicy,
    Sleep,
    TimedOut,
    TransportFailure,
    add_request_hook,
    is_server_error,
    pool_limits,
    send,
    with_retries,
)
from providers.urgency import Slots

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH"})
_jitter = secrets.SystemRandom()


class GitHubApi:
    """Sends requests to the GitHub REST API; the typed calls live in the subclasses."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        max_rate_limit_wait_seconds: float = 60.0,
        max_rate_limit_waits: int = 3,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.time,
        user_agent: str = "setpoint-reconciler",
        max_connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        if not token:
            raise ValueError("a GitHub token is required")
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self._token = SecretStr(token)
        self._timeout = timeout
        self._retry = RetryPolicy(
            attempts=max_attempts,
            backoff_base=backoff_seconds,
            backoff_max=max_backoff_seconds,
        )
        self._max_rl_wait = max_rate_limit_wait_seconds
        self._max_rl_waits = max_rate_limit_waits
        self._sleep = sleep
        self._clock = clock
        self.rate_limit: RateLimitSnapshot | None = None
        # Requests in flight never outnumber the pool's connections (http_core.send).
        self._slots = Slots(max_connections)
        self._http = httpx.AsyncClient(
            base_url=self._base,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            limits=pool_limits(max_connections),
            follow_redirects=True,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": user_agent,
                "Authorization": f"Bearer {self._token.get_secret_value()}",
            },
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._base)!r})"

    def add_request_hook(self, hook: RequestHook) -> None:
        """Run `hook` before every request this client sends (the loop's rate limit)."""
        add_request_hook(self._http, hook)

    @property
    def web_url(self) -> str:
        """The web address of this GitHub (`https://github.com`, or an Enterprise host)."""
        return web_url_for(str(self._base))

    async def __aenter__(self) -> GitHubApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check_token(self) -> None:
        """Raise GitHubUnauthorized if GitHub refuses the token. `GET /rate_limit` costs no
        rate budget on GitHub, so a pass may ask it every time."""
        await self._json("GET", "/rate_limit")

    # -- requests ---------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> Any:
        response = await self._request(method, path, params=params, json=json)
        return response.json() if response.content else None

    async def _paginate(
        self, path: str, *, params: Mapping[str, str | int] | None = None, key: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following `Link: rel="next"` to the end."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: Mapping[str, str | int] | None = {"per_page": PER_PAGE, **(params or {})}
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            response = await self._request("GET", url, params=query)
            body = response.json()
            page = body[key] if key is not None else body
            if not isinstance(page, list):
                raise GitHubError("expected a list", method="GET", path=path)
            items.extend(page)
            url = self._same_origin(next_link(response.headers.get("link")), path)
            query = None  # the next link carries the query
        raise GitHubError(f"more than {MAX_PAGES} pages", method="GET", path=path)

    def _same_origin(self, url: str | None, path: str) -> str | None:
        # A next link pointing at another host would receive our token; refuse it.
        if url is None:
            return None
        target = httpx.URL(url)
        if (target.scheme, target.host, target.port) != (
            self._base.scheme,
            self._base.host,
            self._base.port,
        ):
            raise GitHubError("pagination link leaves the API host", method="GET", path=path)
        return url

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        idempotent = method in IDEMPOTENT_METHODS
        waits = 0
        while True:
            await self._respect_exhausted_budget(method, path)
            response = await with_retries(
                lambda: self._send_once(method, path, params, json),
                idempotent=idempotent,
                policy=self._retry,
                label=f"github {method} {_path_only(path)}",
                sleep=self._sleep,
            )
            hit = classify(response, self._clock())
            if hit is None:
                break
            if hit.wait_seconds > self._max_rl_wait or waits >= self._max_rl_waits:
                raise GitHubRateLimited(
                    _message(response) or "rate limited",
                    reset_at=hit.snapshot.reset_at,
                    retry_after=hit.retry_after,
                    secondary=hit.secondary,
                    status=response.status_code,
                    method=method,
                    path=_path_only(path),
                )
            waits += 1
            log.warning(
                "github rate limited on %s %s, waiting %.1fs",
                method,
                _path_only(path),
                hit.wait_seconds,
            )
            await self._sleep(hit.wait_seconds + _jitter.uniform(0, min(1.0, hit.wait_seconds)))
        _raise_for_status(response, method, _path_only(path))
        return response

    async def _respect_exhausted_budget(self, method: str, path: str) -> None:
        # Known-empty budget: do not spend a request just to be refused again.
        snap = self.rate_limit
        if snap is None or snap.remaining != 0 or snap.reset_epoch is None:
            return
        wait = snap.reset_epoch - self._clock()
        if wait <= 0:
            return
        if wait > self._max_rl_wait:
            raise GitHubRateLimited(
                "rate limit budget exhausted",
                reset_at=snap.reset_at,
                method=method,
                path=_path_only(path),
            )
        await self._sleep(wait)

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        json: Any,
    ) -> httpx.Response:
        where = _path_only(path)
        try:
            response = await send(
                self._http,
                method,
                path,
                timeout=self._timeout,
                params=params,
                json=json,
                slots=self._slots,
            )
        except TransportFailure as failure:
            error = GitHubTimeout if isinstance(failure, TimedOut) else GitHubTransientError
            raise error(
                str(failure), request_sent=failure.request_sent, method=method, path=where
            ) from failure
        if "x-ratelimit-remaining" in response.headers:
            self.rate_limit = snapshot(response.headers)
        log.debug("github %s %s -> %s", method, where, response.status_code)
        if is_server_error(response.status_code):
            raise GitHubTransientError(
                _message(response) or "server error",
                status=response.status_code,
                method=method,
                path=where,
            )
        return response


def _path_only(path: str) -> str:
    # Query strings can carry anything; keep error messages to the path.
    return httpx.URL(path).path


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:300] if message else response.reason_phrase


_BY_STATUS: dict[int, type[GitHubError]] = {
    401: GitHubUnauthorized,
    403: GitHubForbidden,
    404: GitHubNotFound,
    409: GitHubConflict,
    422: GitHubValidationFailed,
}


def _raise_for_status(response: httpx.Response, method: str, path: str) -> None:
    if response.status_code < 400:
        return
    if response.status_code == 403:  # a rate-limit 403 was taken apart before this
        raise GitHubForbidden(
            _message(response),
            accepted_permissions=response.headers.get("x-accepted-github-permissions"),
            status=403,
            method=method,
            path=path,
        )
    error = _BY_STATUS.get(response.status_code, GitHubError)
    raise error(_message(response), status=response.status_code, method=method, path=path)
