"""A workflow's reconcile request: 202 at once with an operation its requester can read, the
same operation for a replayed idempotency key, 409 for a key reused with another body."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.operations import Operation
from reconciler.records.work_queue import LaneWork, WorkPriority
from tests.api.conftest import Mint, add_grant, audit_events, bearer

RECONCILE = "/v1/lanes/product/shop/testing/reconcile"
LANE = "product:shop/testing"


def queued(engine: Engine) -> list[LaneWork]:
    with session_scope(engine) as session:
        return list(session.execute(sa.select(LaneWork)).scalars())


def operation_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(Operation)).scalar_one())


async def test_a_request_is_answered_202_with_an_operation_its_requester_reads(
    client: httpx.AsyncClient, engine: Engine, mint: Mint, operator_token: str
) -> None:
    add_grant(engine, "product:shop/*")

    answer = await client.post(RECONCILE, headers=bearer(mint()))

    assert answer.status_code == 202
    operation = answer.json()
    assert operation["id"].startswith("op_") and operation["status"] == "pending"
    assert (operation["lane"], operation["apply_requested"]) == (LANE, False)
    assert answer.headers["location"] == f"/v1/operations/{operation['id']}"
    # Reserved and queued in one transaction, at the workflow's priority.
    [work] = queued(engine)
    assert (work.lane, work.priority) == (LANE, WorkPriority.workflow)
    assert [r.lane for r in audit_events(engine, AuditEvent.reconcile_requested)] == [LANE]

    # The same workflow reads it with a fresh token; so does an operator.
    read = await client.get(answer.headers["location"], headers=bearer(mint()))
    assert read.status_code == 200 and read.json()["id"] == operation["id"]
    by_operator = await client.get(answer.headers["location"], headers=bearer(operator_token))
    assert by_operator.status_code == 200


async def test_another_workflow_cannot_read_the_operation_and_is_audited(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "product:shop/*")
    created = await client.post(RECONCILE, headers=bearer(mint()))
    other = mint({"workflow_ref": "acme/shop/.github/workflows/other.yml@refs/heads/main"})

    read = await client.get(created.headers["location"], headers=bearer(other))

    assert read.status_code == 404
    assert read.json()["type"].endswith("/unknown_operation")  # not told it exists
    [denied] = audit_events(engine, AuditEvent.api_denied)
    assert denied.data["reason"] == "not_requester" and denied.lane == LANE


async def test_a_replayed_idempotency_key_returns_the_same_operation(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "product:shop/*")
    key = {"Idempotency-Key": "build-4242-attempt-1"}

    first = await client.post(RECONCILE, headers=bearer(mint()) | key, json={"note": "image"})
    again = await client.post(RECONCILE, headers=bearer(mint()) | key, content=b'{"note":"image"}')

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert operation_count(engine) == 1
    [work] = queued(engine)
    assert work.seq == 1  # queued once, not twice
    assert len(audit_events(engine, AuditEvent.reconcile_requested)) == 1


async def test_an_idempotency_key_reused_with_another_body_is_a_409_problem(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "product:shop/*", allow_apply=True)
    key = {"Idempotency-Key": "build-4242"}
    first = await client.post(RECONCILE, headers=bearer(mint()) | key)

    reused = await client.post(RECONCILE, headers=bearer(mint()) | key, json={"apply": True})

    assert reused.status_code == 409
    assert reused.headers["content-type"] == "application/problem+json"
    body = reused.json()
    assert set(body) >= {"type", "title", "status", "detail"} and body["status"] == 409
    assert first.json()["id"] in body["detail"]
    assert operation_count(engine) == 1


async def test_apply_is_recorded_only_when_asked_and_granted(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "product:shop/testing", allow_apply=True)

    plan_only = await client.post(RECONCILE, headers=bearer(mint()))
    with_apply = await client.post(RECONCILE, headers=bearer(mint()), json={"apply": True})

    assert plan_only.json()["apply_requested"] is False
    assert with_apply.json()["apply_requested"] is True


async def test_a_bad_body_says_which_field(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "product:shop/*")

    answer = await client.post(RECONCILE, headers=bearer(mint()), json={"apply": "yes please"})

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.apply:")
    assert "yes please" not in answer.text
    assert operation_count(engine) == 0


async def test_a_request_for_a_lane_already_waiting_says_it_was_merged(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    """Issue 23, item 7: the second request is not silently folded into the first."""
    add_grant(engine, "product:shop/*")
    first = await client.post(RECONCILE, headers=bearer(mint()))
    second = await client.post(
        RECONCILE, headers=bearer(mint()), json={"reason": "a second build finished"}
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["merged_into"] is None
    view = second.json()
    assert view["merged_into"] == first.json()["id"]
    assert view["reason"] == "a second build finished"
    assert view["requested_by"].startswith("workflow:acme/shop:")
