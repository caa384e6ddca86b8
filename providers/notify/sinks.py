"""Notification sinks: apprise (Slack, Discord, Teams, email, ntfy, Matrix, ...) and a
signed generic JSON webhook.

A sink is named by the operator and built from a URL. `signed+https://...` (or
`signed+http://...`) is Setpoint's own webhook: a POST of the message as JSON, signed with
HMAC-SHA256 over the exact body (`X-Setpoint-Signature: sha256=<hex>`), so a receiver can
check it came from this installation. Every other URL is apprise's
(https://github.com/caronc/apprise/wiki). Sink URLs hold tokens: they are never logged or
recorded; a sink is shown by its name, and its answer by status and a short, redacted text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import httpx

_apprise_log = logging.getLogger("apprise")
SIGNATURE_HEADER = "X-Setpoint-Signature"
SIGNED_PREFIX = "signed+"
_ANSWER_CHARS = 300


@dataclass(frozen=True)
class NotificationItem:
    """One thing that happened: which trigger, which lane (if any), what, and where to look."""

    trigger: str
    lane: str | None
    title: str
    body: str
    link: str | None


@dataclass(frozen=True)
class Message:
    """What one send carries: the items grouped (a pass's news), under one id."""

    message_id: str
    items: tuple[NotificationItem, ...]

    @property
    def title(self) -> str:
        if len(self.items) == 1:
            return self.items[0].title
        return f"Setpoint: {len(self.items)} lane changes"

    def text(self) -> str:
        parts = []
        for item in self.items:
            link = f"\n{item.link}" if item.link else ""
            parts.append(f"{item.title}\n{item.body}{link}")
        return "\n\n".join(parts)

    def document(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "title": self.title,
            "items": [
                {
                    "trigger": i.trigger,
                    "lane": i.lane,
                    "title": i.title,
                    "body": i.body,
                    "link": i.link,
                }
                for i in self.items
            ],
        }


class NotDelivered(Exception):
    """A send that did not land; `transient`: trying again later may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Sink(Protocol):
    name: str

    async def send(self, message: Message) -> dict[str, Any]:
        """Send `message`; the answer to record. Raises `NotDelivered`."""
        ...


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass
class SignedWebhookSink:
    """POST the message as JSON, signed; 2xx lands, 5xx, 429 and no answer are transient."""

    name: str
    url: str
    secret: str = field(repr=False)
    timeout: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None

    async def send(self, message: Message) -> dict[str, Any]:
        body = json.dumps(message.document(), separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, body),
            "User-Agent": "setpoint-notify",
        }
        try:
            with anyio.fail_after(self.timeout + 1.0):
                async with httpx.AsyncClient(
                    transport=self.transport, timeout=self.timeout, trust_env=False
                ) as http:
                    response = await http.post(self.url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise NotDelivered(f"no answer within {self.timeout:g}s", transient=True) from None
        except httpx.HTTPError as exc:
            raise NotDelivered(f"could not send: {type(exc).__name__}", transient=True) from None
        answer = {"status": response.status_code, "text": response.text[:_ANSWER_CHARS]}
        if response.is_success:
            return answer
        transient = response.status_code >= 500 or response.status_code == 429
        raise NotDelivered(f"HTTP {response.status_code}", transient=transient)


@dataclass
class AppriseSink:
    """One apprise URL. Apprise answers only whether the service took the message, so a
    failure is taken as transient (the service may be down) and tried again on backoff."""

    name: str
    url: str = field(repr=False)
    timeout: float = 10.0

    async def send(self, message: Message) -> dict[str, Any]:
        import apprise

        # Apprise's plugins log their full URLs (tokens and all) at debug level; whatever the
        # operator's -vv asks for, only its warnings and errors reach our logs.
        logging.getLogger("apprise").setLevel(max(logging.WARNING, _apprise_log.level))
        notifier = apprise.Apprise()
        if not notifier.add(self.url):
            raise NotDelivered("apprise does not understand the sink's URL", transient=False)
        try:
            with anyio.fail_after(self.timeout):
                landed = await notifier.async_notify(body=message.text(), title=message.title)
        except TimeoutError:
            raise NotDelivered(f"no answer within {self.timeout:g}s", transient=True) from None
        if not landed:
            raise NotDelivered("apprise reported the service did not take it", transient=True)
        return {"apprise": "delivered"}


def build_sinks(
    urls: Mapping[str, str], *, webhook_secret: str | None, timeout: float
) -> list[Sink]:
    """The sinks the operator named. Raises ValueError, naming the sink (never its URL),
    for a signed webhook without a secret."""
    sinks: list[Sink] = []
    for name, url in sorted(urls.items()):
        if url.startswith(SIGNED_PREFIX):
            if not webhook_secret:
                raise ValueError(
                    f"notification sink {name} is a signed webhook: set "
                    "SETPOINT_NOTIFY_WEBHOOK_SECRET"
                )
            target = url[len(SIGNED_PREFIX) :]
            sinks.append(SignedWebhookSink(name, target, webhook_secret, timeout=timeout))
        else:
            sinks.append(AppriseSink(name, url, timeout=timeout))
    return sinks
