"""What keeps the review pages safe: headers, signed forms, sign-in cookies, bounded bodies.

- Every page carries a strict Content-Security-Policy (scripts and styles from this site's
  own files only, nothing inline; no framing), so injected markup cannot run.
- A form that changes something (apply, sign-in) carries a token: an HMAC, under the site's
  form key, of what the form is for (`apply:<plan id>`) and a random nonce kept in a
  SameSite=Strict, HttpOnly cookie. Another site can neither read the token nor send the
  cookie, and a token made for one plan does not apply another.
- Signing in with an operator token (when reading needs one) opens a session on the server
  (`records/web_sessions.py`) and sets a cookie naming it, an expiry and an HMAC of both;
  the token itself never goes into a cookie. Signing out ends the session on the server, and
  a revoked token's sessions stop working at once (each request looks the session up).
- Cookies are `Secure` as the operator says (SETPOINT_WEB_SECURE_COOKIES, else when
  SETPOINT_PUBLIC_URL is https), never as the request's scheme says: behind a proxy that
  depends on which addresses uvicorn trusts for forwarded headers.
- Every response of the app, error answers and static files included, carries the
  security headers (`SecurityHeaders`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show live state and forms carry tokens: nothing is kept by caches or history.
    "Cache-Control": "no-store",
}
FORM_COOKIE = "setpoint_form"
SESSION_COOKIE = "setpoint_session"
SESSION_SECONDS = 8 * 3600
MAX_FORM_BYTES = 4096  # an apply or sign-in form is a few hundred bytes
MAX_FORM_FIELDS = 20  # an apply form has five
# Headers every response carries (pages add Cache-Control: no-store besides).
EVERY_RESPONSE = {k: v for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"}


class SecurityHeaders:
    """ASGI middleware: every response gets the security headers it does not set itself
    (a 404 or 401 problem answer, a static file, /healthz), not only the pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_RESPONSE.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


class SecuredRoute(APIRoute):
    """A route whose every response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            response = await handler(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        return secured


def _sign(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def form_nonce(request: Request) -> tuple[str, bool]:
    """The browser's form nonce, and whether it is new (then it must be set as a cookie)."""
    nonce = request.cookies.get(FORM_COOKIE, "")
    if len(nonce) == 32 and nonce.isalnum():
        return nonce, False
    return secrets.token_hex(16), True


def form_token(key: bytes, nonce: str, purpose: str) -> str:
    return _sign(key, "form", purpose, nonce)


def form_is_genuine(key: bytes, request: Request, purpose: str, token: str) -> bool:
    """True when the form was made by this site, for `purpose`, in this browser."""
    nonce = request.cookies.get(FORM_COOKIE, "")
    if not nonce or not token or not _posted_from_this_site(request):
        return False
    return hmac.compare_digest(form_token(key, nonce, purpose), token)


def _posted_from_this_site(request: Request) -> bool:
    """A browser names the page a POST came from; it must be this site (when named)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def set_cookie(response: Response, name: str, value: str, max_age: int, *, secure: bool) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )


def session_cookie(key: bytes, session_id: str, now: float | None = None) -> str:
    expires = str(int((now or time.time()) + SESSION_SECONDS))
    return f"{session_id}.{expires}.{_sign(key, 'session', session_id, expires)}"


def session_id_of(key: bytes, cookie: str, now: float | None = None) -> str | None:
    """The session a cookie names, if the cookie is genuine and unexpired (the session
    itself may have ended since: the records say)."""
    session_id, _, rest = cookie.partition(".")
    expires, _, signature = rest.partition(".")
    if not (session_id and expires.isdigit() and signature):
        return None
    if not hmac.compare_digest(_sign(key, "session", session_id, expires), signature):
        return None
    return session_id if int(expires) > (now or time.time()) else None


async def read_form(request: Request) -> dict[str, str] | None:
    """The url-encoded form, first value of each field; None when it is too large or has
    more fields than any form of this site."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # more fields than max_num_fields
        return None
    return {name: values[0] for name, values in fields.items() if values}


def safe_next(path: str | None, default: str) -> str:
    """Where to go after signing in: only a path on this site (never `//elsewhere`)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path
