"""What the review pages are served from: the database, a way to open a runtime for an
apply, who may read, and the key that signs forms."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.engine import Engine
from starlette.requests import Request

from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings

RuntimeOpener = Callable[[], AbstractAsyncContextManager[Runtime]]
# The dependency that lets a reader in (or sends them to sign in).
Reader = Callable[[Request], Awaitable[None]]


class PageAccess(StrEnum):
    open = "open"  # anyone who reaches the pages reads them; applying still needs a token
    token = "token"  # noqa: S105 -- a mode's name, not a password. Reading needs a signed-in operator token too
    off = "off"  # no pages are served


@dataclass(frozen=True)
class ReviewSite:
    database: Engine
    # Opens the runtime an apply runs in (the page then names the operator as its actor):
    # `setpoint serve` passes `reconciler.cli.wiring.open_runtime`, tests and the demo theirs.
    open_runtime: RuntimeOpener
    access: PageAccess = PageAccess.token
    form_key: bytes = b""
    public_url: str | None = None
    # An apply that takes longer is left running and the browser sent to the plan's page.
    apply_wait_seconds: float = 10.0
    # Cookies carry `Secure` when this says so, whatever scheme the request arrived with.
    secure_cookies: bool = False
    # What "now" is for the pages (a plan past its expiry is shown expired); tests move it.
    clock: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        if not self.form_key:
            # One process only: with several replicas behind one address, set
            # SETPOINT_REVIEW_FORM_KEY so a form made by one is accepted by another.
            object.__setattr__(self, "form_key", secrets.token_bytes(32))


def shared_runtime(runtime: Runtime) -> RuntimeOpener:
    """An opener that lends a runtime already open for the whole service (the API's), in
    the service's own event loop; the page applies with a copy naming the operator."""

    @asynccontextmanager
    async def lend() -> AsyncIterator[Runtime]:
        yield runtime

    return lend


def review_site(database: Engine, open_runtime: RuntimeOpener, settings: Settings) -> ReviewSite:
    """The site as the settings describe it."""
    key = settings.review_form_key
    return ReviewSite(
        database=database,
        open_runtime=open_runtime,
        access=PageAccess(settings.review_pages),
        form_key=key.get_secret_value().encode() if key is not None else b"",
        public_url=settings.public_url,
        secure_cookies=secure_cookies(settings),
    )


def secure_cookies(settings: Settings) -> bool:
    """SETPOINT_WEB_SECURE_COOKIES when set, else whether SETPOINT_PUBLIC_URL is https."""
    if settings.web_secure_cookies is not None:
        return settings.web_secure_cookies
    return (settings.public_url or "").startswith("https://")
