"""Verifying GitHub webhook deliveries: signature, size, shape, redelivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SIGNATURE_HEADER = "x-hub-signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"

# GitHub caps payloads at 25 MB; the events Setpoint reads are far smaller, and a bound
# keeps an unauthenticated sender from making us hash arbitrary amounts of data.
DEFAULT_MAX_BODY_BYTES = 1_048_576


# GitHub's webhook event names (`X-GitHub-Event`), the ones a repository or organization
# hook may send. Anything else is not GitHub's: metrics count it as one `other`.
GITHUB_EVENTS = frozenset(
    {
        "branch_protection_rule", "check_run", "check_suite", "create", "delete",
        "deployment", "deployment_status", "fork", "installation",
        "installation_repositories", "issue_comment", "issues", "label", "member", "meta",
        "package", "ping", "public", "pull_request", "pull_request_review",
        "pull_request_review_comment", "pull_request_review_thread", "push",
        "registry_package", "release", "repository", "repository_dispatch", "star", "status",
        "workflow_dispatch", "workflow_job", "workflow_run",
    }
)  # fmt: skip


class WebhookRejected(Exception):
    """The delivery is refused. `reason` is one of: body_too_large, missing_signature,
    bad_signature, missing_event, missing_delivery_id, malformed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"webhook rejected: {reason}")


@dataclass(frozen=True)
class VerifiedDelivery:
    event: str
    delivery_id: str
    payload: dict[str, Any] = field(repr=False)
    redelivery: bool

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None


class DeliveryStore(Protocol):
    """Remembers delivery ids; GitHub's redeliveries reuse the original `X-GitHub-Delivery`."""

    def seen(self, delivery_id: str) -> bool: ...

    def remember(self, delivery_id: str) -> None: ...


class InMemoryDeliveryStore:
    """The last `max_entries` delivery ids of this process (a redelivery days later, or
    after a restart, is not recognised; the database-backed store covers that)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def seen(self, delivery_id: str) -> bool:
        with self._lock:
            return delivery_id in self._ids

    def remember(self, delivery_id: str) -> None:
        with self._lock:
            self._ids[delivery_id] = None
            self._ids.move_to_end(delivery_id)
            while len(self._ids) > self._max:
                self._ids.popitem(last=False)


def sign(secret: str | bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookVerifier:
    def __init__(
        self,
        secret: str,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        deliveries: DeliveryStore | None = None,
    ) -> None:
        if not secret:
            raise ValueError("a webhook secret is required")
        self._key = secret.encode()
        self._max = max_body_bytes
        self._deliveries: DeliveryStore = deliveries or InMemoryDeliveryStore()

    def __repr__(self) -> str:
        return f"WebhookVerifier(max_body_bytes={self._max})"

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Check one delivery; nothing from the body is trusted before the HMAC matches."""
        if len(body) > self._max:
            raise WebhookRejected("body_too_large")
        lowered = {k.lower(): v for k, v in headers.items()}
        signature = lowered.get(SIGNATURE_HEADER, "").strip()
        if not signature:
            raise WebhookRejected("missing_signature")
        if not hmac.compare_digest(signature.encode(), sign(self._key, body).encode()):
            raise WebhookRejected("bad_signature")
        event = lowered.get(EVENT_HEADER, "").strip()
        if not event:
            raise WebhookRejected("missing_event")
        delivery_id = lowered.get(DELIVERY_HEADER, "").strip()
        if not delivery_id:
            raise WebhookRejected("missing_delivery_id")
        try:
            payload = json.loads(body)
        except ValueError:
            raise WebhookRejected("malformed") from None
        if not isinstance(payload, dict):
            raise WebhookRejected("malformed")
        redelivery = self._deliveries.seen(delivery_id)
        if not redelivery:
            self._deliveries.remember(delivery_id)
        return VerifiedDelivery(
            event=event, delivery_id=delivery_id, payload=payload, redelivery=redelivery
        )
