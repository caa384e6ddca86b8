"""Notifications (issue 27): a state change that needs a person is told to the operator's
sinks once, signed, naming the lane and its page; a sink that is down is tried again on its
own backoff and never holds up a lane; sink URLs and keys never appear in what is recorded."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.demo.loopback import serve
from reconciler.loop.passes import reconcile_pass
from reconciler.records import notifications
from reconciler.records.audit import list_records
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime, ShiftedClock
from tests.reconciler.conftest import Workload
from tests.support.notify_receiver import NotifyReceiver

LANE = "product:shop/testing"
KEY = "whsec-test-key-not-to-be-seen-0123456789"
INTERVAL = 300.0


@pytest.fixture
def receiver() -> NotifyReceiver:
    return NotifyReceiver(secret=KEY)


@pytest.fixture
def hook_url(receiver: NotifyReceiver) -> Iterator[str]:
    with serve(receiver.app()) as base:
        yield f"signed+{base}/hook?token=sink-token-not-to-be-seen"


def _notifying(runtime: Runtime, hook_url: str, clock: ShiftedClock) -> Runtime:
    settings = runtime.settings.model_copy(
        update={
            "notify_sinks": {"ops-hook": SecretStr(hook_url)},
            "notify_webhook_secret": SecretStr(KEY),
            "public_url": "https://setpoint.example.test",
        }
    )
    return dataclasses.replace(runtime, settings=settings, clock=clock)


async def _degrade(runtime: Runtime, workload: Workload, clock: ShiftedClock) -> None:
    assert (await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)).ok
    await reconcile_pass(runtime)
    workload.status = 503
    clock.offset += INTERVAL
    await reconcile_pass(runtime)


async def test_a_degraded_lane_is_told_once_signed_with_its_page(
    runtime: Runtime, workload: Workload, receiver: NotifyReceiver, hook_url: str
) -> None:
    clock = ShiftedClock()
    runtime = _notifying(runtime, hook_url, clock)
    await _degrade(runtime, workload, clock)

    (item,) = [i for i in receiver.items() if i["lane"] == LANE]
    assert item["trigger"] == "lane_degraded"
    assert "status 503" in item["body"] and LANE in item["title"]
    assert item["link"] == "https://setpoint.example.test/lanes/product/shop/testing"
    assert all(r.signed_ok for r in receiver.received)

    for _ in range(3):  # the same change, seen again (and checked again): not told again
        clock.offset += INTERVAL
        await reconcile_pass(runtime)
    assert len([i for i in receiver.items() if i["lane"] == LANE]) == 1

    with session_scope(runtime.database) as session:
        rows = notifications.recent(session, lane=LANE)
        records = list_records(session, limit=1000)
    (row,) = rows
    assert row.state == "delivered" and row.attempts == 1 and row.answer is not None
    assert row.answer["status"] == 200
    recorded = json.dumps([r.model_dump(mode="json") for r in rows + records])
    assert KEY not in recorded and "sink-token-not-to-be-seen" not in recorded


async def test_a_sink_that_is_down_is_tried_again_on_its_own_backoff(
    runtime: Runtime, workload: Workload, receiver: NotifyReceiver, hook_url: str
) -> None:
    clock = ShiftedClock()
    runtime = _notifying(runtime, hook_url, clock)
    receiver.status = 503
    await _degrade(runtime, workload, clock)
    assert receiver.refused >= 1 and receiver.received == []
    with session_scope(runtime.database) as session:
        (row,) = notifications.recent(session, lane=LANE)
    assert row.state == "pending" and row.answer == {"error": "HTTP 503", "transient": True}
    assert row.due_at > row.created_at  # its own due time: the lane went on without it

    receiver.status = 200
    clock.offset += 3600.0  # past any backoff
    report = await reconcile_pass(runtime)
    assert report.notify_problems == []
    assert [i["lane"] for i in receiver.items()].count(LANE) == 1


async def test_an_operator_apply_tells_of_its_failure_whatever_the_sink_does(
    runtime: Runtime, emulator: Emulator, receiver: NotifyReceiver, hook_url: str
) -> None:
    clock = ShiftedClock()
    runtime = _notifying(runtime, hook_url, clock)

    async def failing_apply() -> None:
        emulator.faults.fail_next("application.create", status=400)
        result = await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)
        assert result.status == "failed"  # the sink never changes what the apply says

    receiver.status = 503
    await failing_apply()
    with session_scope(runtime.database) as session:
        (row,) = notifications.recent(session, lane=LANE)
    assert row.trigger == "apply_failed" and row.state == "pending", row
    assert receiver.refused == 1 and receiver.received == []

    receiver.status = 200
    clock.offset += 3600.0  # past the row's backoff
    await failing_apply()  # the same failure: nothing new, the waiting row goes out
    assert [i["trigger"] for i in receiver.items() if i["lane"] == LANE] == ["apply_failed"]
    with session_scope(runtime.database) as session:
        (row,) = notifications.recent(session, lane=LANE)
    assert row.state == "delivered"
