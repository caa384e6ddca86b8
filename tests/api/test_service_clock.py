"""The API reads time from the service's runtime clock, as the loop and the records do: a
worker's claim on a lane shows as held until its time on that clock, in /v1/lanes and in
/metrics alike, and a webhook's work is queued at the moment the runtime says it came."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from providers.github.webhooks import sign
from reconciler.records import work_queue
from reconciler.records.database import session_scope
from reconciler.records.webhook_deliveries import WebhookDelivery
from reconciler.records.work_queue import LaneWork, WorkPriority
from reconciler.runtime import Runtime, ShiftedClock
from tests.api.conftest import WEBHOOK_SECRET, bearer

LANE = "product:shop/testing"
HOLD_SECONDS = 60.0
AHEAD = timedelta(days=2)  # the service's clock, well ahead of the wall clock


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock(offset=AHEAD.total_seconds())


@pytest.fixture
def api_runtime(api_runtime: Runtime, clock: ShiftedClock) -> Runtime:
    """The API tests' runtime, on a clock the test moves."""
    return dataclasses.replace(api_runtime, clock=clock)


def claimed_gauge(metrics: str) -> str:
    [line] = [row for row in metrics.splitlines() if row.startswith("setpoint_queue_claimed ")]
    return line.split()[1]


async def test_a_claim_is_held_until_its_time_on_the_services_clock(
    client: httpx.AsyncClient, engine: Engine, operator_token: str, clock: ShiftedClock
) -> None:
    with session_scope(engine) as session:
        work_queue.enqueue(session, [LANE], WorkPriority.workflow, "test", clock.now())
        [claimed] = work_queue.claim(
            session, "worker-1", clock.now(), limit=1, hold_seconds=HOLD_SECONDS
        )
    assert claimed.lane == LANE

    held = await client.get("/v1/lanes", headers=bearer(operator_token))
    assert held.json()["lanes"][0]["queue"]["claimed"] is True
    assert claimed_gauge((await client.get("/metrics")).text) == "1.0"

    clock.advance(HOLD_SECONDS + 1)  # the worker never came back: its claim has lapsed

    lapsed = await client.get("/v1/lanes/product/shop/testing", headers=bearer(operator_token))
    assert lapsed.json()["queue"]["claimed"] is False
    assert claimed_gauge((await client.get("/metrics")).text) == "0.0"


async def test_a_webhooks_work_is_queued_when_the_runtime_says_it_came(
    webhook_client: httpx.AsyncClient, engine: Engine, clock: ShiftedClock
) -> None:
    payload = {
        "action": "opened",
        "number": 7,
        "pull_request": {"number": 7, "head": {"sha": "a" * 40}},
        "repository": {"full_name": "acme/shop", "id": 101},
    }
    body = json.dumps(payload).encode()
    headers = {
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-1",
        "Content-Type": "application/json",
    }

    answer = await webhook_client.post("/v1/webhooks/github", content=body, headers=headers)

    assert answer.status_code == 202
    with session_scope(engine) as session:
        [work] = session.execute(sa.select(LaneWork)).scalars().all()
        [delivery] = session.execute(sa.select(WebhookDelivery)).scalars().all()
    for moment in (work.due_at, delivery.received_at):
        assert abs(moment - clock.now()) < timedelta(minutes=5)
