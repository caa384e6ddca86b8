"""GitHub webhook deliveries: a bad signature or an oversized body is refused (and audited);
a delivery queues its lanes in the transaction that records it; a redelivery does nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from providers.github.webhooks import sign
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.webhook_deliveries import WebhookDelivery
from reconciler.records.work_queue import LaneWork, WorkPriority
from tests.api.conftest import WEBHOOK_SECRET, audit_events

HOOK = "/v1/webhooks/github"


def pull_request(number: int = 7, repository: str = "acme/shop") -> bytes:
    payload: dict[str, Any] = {
        "action": "opened",
        "number": number,
        "pull_request": {"number": number, "head": {"sha": "a" * 40}},
        "repository": {"full_name": repository, "id": 101},
    }
    return json.dumps(payload).encode()


def headers(body: bytes, delivery: str = "d-1", secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": sign(secret, body),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


def rows(engine: Engine) -> tuple[list[LaneWork], list[WebhookDelivery]]:
    with session_scope(engine) as session:
        work = list(session.execute(sa.select(LaneWork)).scalars())
        deliveries = list(session.execute(sa.select(WebhookDelivery)).scalars())
    return work, deliveries


async def test_a_pull_request_queues_its_preview_lane_once_however_often_delivered(
    webhook_client: httpx.AsyncClient, engine: Engine
) -> None:
    body = pull_request(7)

    first = await webhook_client.post(HOOK, content=body, headers=headers(body))
    again = await webhook_client.post(HOOK, content=body, headers=headers(body))

    assert first.status_code == 202
    assert first.json() == {"delivery": "d-1", "redelivery": False, "queued": ["preview:shop/pr-7"]}
    assert again.status_code == 200 and again.json()["redelivery"] is True
    work, deliveries = rows(engine)
    assert [(w.lane, w.priority, w.seq) for w in work] == [
        ("preview:shop/pr-7", WorkPriority.webhook, 1)
    ]
    assert [(d.delivery_id, d.lanes) for d in deliveries] == [("d-1", ["preview:shop/pr-7"])]


async def test_a_delivery_for_a_repository_without_previews_queues_nothing(
    webhook_client: httpx.AsyncClient, engine: Engine
) -> None:
    body = pull_request(3, repository="acme/ledger")

    answer = await webhook_client.post(HOOK, content=body, headers=headers(body, "d-2"))

    assert answer.status_code == 202 and answer.json()["queued"] == []
    work, deliveries = rows(engine)
    assert work == [] and len(deliveries) == 1


async def test_a_bad_signature_is_refused_and_audited(
    webhook_client: httpx.AsyncClient, engine: Engine
) -> None:
    body = pull_request()

    forged = await webhook_client.post(HOOK, content=body, headers=headers(body, secret="guessed"))
    unsigned = await webhook_client.post(
        HOOK, content=body, headers={"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "x"}
    )

    assert (forged.status_code, unsigned.status_code) == (401, 401)
    assert forged.headers["content-type"] == "application/problem+json"
    reasons = [r.data["reason"] for r in audit_events(engine, AuditEvent.webhook_refused)]
    assert reasons == ["bad_signature", "missing_signature"]
    assert rows(engine) == ([], [])


async def test_an_oversized_body_is_refused_before_it_is_read(
    webhook_client: httpx.AsyncClient, engine: Engine
) -> None:
    big = b'{"pad": "' + b"x" * 8192 + b'"}'  # the tests' limit is 4096 bytes

    declared = await webhook_client.post(HOOK, content=big, headers=headers(big, "d-3"))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(10):
            yield b"x" * 1024

    streamed = await webhook_client.post(HOOK, content=chunks(), headers=headers(big, "d-4"))

    assert (declared.status_code, streamed.status_code) == (413, 413)
    # One record: the same source's second refusal of the minute is summed up later
    # (tests/api/test_refusal_flood.py), so a flood cannot flood the audit trail.
    reasons = [r.data["reason"] for r in audit_events(engine, AuditEvent.webhook_refused)]
    assert reasons == ["body_too_large"]
    assert rows(engine) == ([], [])
