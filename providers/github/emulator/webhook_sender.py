"""Signed webhook deliveries from the emulator, shaped like GitHub's `pull_request` events."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from providers.github.emulator import objects
from providers.github.webhooks import sign

if TYPE_CHECKING:
    from providers.github.emulator.state import EmulatorState

PULL_REQUEST_ACTIONS = ("opened", "synchronize", "labeled", "unlabeled", "closed", "reopened")


def pull_request_payload(
    state: EmulatorState,
    owner: str,
    repo: str,
    number: int,
    action: str,
    *,
    label: str | None = None,
    before: str | None = None,
    after: str | None = None,
    sender: str | None = None,
) -> dict[str, Any]:
    """The body GitHub sends for a `pull_request` event, from the PR's current state."""
    if action not in PULL_REQUEST_ACTIONS:
        raise ValueError(f"unsupported pull_request action {action!r}")
    base = state.public_url
    pr = state.pull(owner, repo, number)
    found = state.repo(owner, repo)
    login = sender or pr.user_login
    payload: dict[str, Any] = {
        "action": action,
        "number": number,
        "pull_request": objects.pull(state, base, pr, full=True),
        "repository": objects.repository(state, base, found),
        "sender": objects.user(base, login, state.user_id(login)),
    }
    if action in ("labeled", "unlabeled"):
        if label is None:
            raise ValueError(f"a {action} event names its label")
        payload["label"] = objects.label(base, found, label, state.label_id(label))
    if action == "synchronize":
        payload["before"] = before or pr.head_sha
        payload["after"] = after or pr.head_sha
    return payload


async def send_webhook(
    url: str,
    event: str,
    payload: dict[str, Any],
    secret: str,
    *,
    delivery_id: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_seconds: float = 10.0,
) -> httpx.Response:
    """POST one delivery the way GitHub does: JSON body, HMAC-SHA256 signature, event
    and delivery headers. Reuse `delivery_id` to imitate a redelivery."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/emulator",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": sign(secret, body),
    }
    async with httpx.AsyncClient(transport=transport, timeout=timeout_seconds) as client:
        return await client.post(url, content=body, headers=headers)
