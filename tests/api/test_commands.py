"""`setpoint grants …`, `setpoint tokens …`, `setpoint reconcile` (a client of the API on
loopback) and `setpoint serve`'s service runner."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from reconciler.api.server import run_service
from reconciler.demo.loopback import free_port, serve
from reconciler.errors import CannotListen
from reconciler.records import operations
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.operations import Operation, OperationPhase, OperationStatus
from reconciler.records.operator_tokens import OperatorToken
from reconciler.runtime import utcnow
from tests.api.conftest import audit_events
from tests.support.cli import Invoke


def test_grants_are_added_listed_and_removed_audited(setpoint: Invoke, engine: Engine) -> None:
    added = setpoint(
        "grants", "add", "--repository-id", "101", "--repository", "acme/shop",
        "--lanes", "product:shop/*", "--ref", "refs/heads/main", "--allow-apply", "-o", "json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = setpoint("grants", "list")
    assert "product:shop/*" in listed.output and "plan,apply" in listed.output
    grant_id = listed.output.split()[listed.output.split().index("product:shop/*") - 2]

    removed = setpoint("grants", "remove", grant_id)
    again = setpoint("grants", "remove", grant_id)

    assert removed.exit_code == 0 and again.exit_code == 1
    assert "no grants" in setpoint("grants", "list").output
    events = [
        *audit_events(engine, AuditEvent.grant_added),
        *audit_events(engine, AuditEvent.grant_removed),
    ]
    assert [e.data["id"] for e in events] == [grant_id, grant_id]


def test_a_token_is_shown_once_stored_as_a_digest_and_revocable(
    setpoint: Invoke, engine: Engine
) -> None:
    created = setpoint("tokens", "create", "alice")
    token = created.stdout.strip().splitlines()[-1]
    assert created.exit_code == 0 and token.startswith("spt_")

    listed = setpoint("tokens", "list", "-o", "json")
    assert token not in listed.output
    with session_scope(engine) as session:
        [row] = session.execute(sa.select(OperatorToken)).scalars().all()
    assert token not in str(row.model_dump())
    assert setpoint("tokens", "revoke", row.id).exit_code == 0
    assert setpoint("tokens", "revoke", row.id).exit_code == 1
    created_events = audit_events(engine, AuditEvent.operator_token_created)
    assert [e.data["token_id"] for e in created_events] == [row.id]
    assert token not in str([e.data for e in created_events])


@pytest.fixture
def served_api(api: FastAPI, setpoint: Invoke, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    token = setpoint("tokens", "create", "ci-bot").stdout.strip().splitlines()[-1]
    with serve(api) as url:
        monkeypatch.setenv("SETPOINT_API_URL", url)
        monkeypatch.setenv("SETPOINT_API_TOKEN", token)
        monkeypatch.setenv("SETPOINT_API_TIMEOUT_SECONDS", "5")
        yield url


def when_queued(engine: Engine, status: OperationStatus, **moved: Any) -> threading.Thread:
    """Stands in for the loop's worker: moves the operation on once it appears (finished,
    by default; `moved` for anything else, such as parked on a build)."""
    error = "a blocker" if status not in ("succeeded", "running") else None
    values = {"phase": OperationPhase.done, "plan_id": "plan_abc", "error": error} | moved

    def work() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                ids = session.exec(select(col(Operation.id))).all()
                if ids:
                    operations.advance(session, ids, utcnow(), status=status, **values)
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


async def test_reconcile_is_accepted_at_once_without_wait(
    served_api: str, setpoint: Invoke, engine: Engine
) -> None:
    result = await anyio.to_thread.run_sync(lambda: setpoint("reconcile", "shop/testing"))

    assert result.exit_code == 0, result.output
    assert "product:shop/testing: pending" in result.output


@pytest.mark.parametrize(("status", "code"), [("succeeded", 0), ("blocked", 2), ("failed", 1)])
async def test_reconcile_waits_for_the_result_and_says_it_in_its_exit_code(
    served_api: str, setpoint: Invoke, engine: Engine, status: OperationStatus, code: int
) -> None:
    worker = when_queued(engine, OperationStatus(status))

    result = await anyio.to_thread.run_sync(
        lambda: setpoint("reconcile", "product:shop/testing", "--wait", "--apply")
    )

    worker.join()
    assert result.exit_code == code, result.output
    assert f": {status} (plan plan_abc)" in result.output


async def test_reconcile_gives_up_waiting_with_exit_3(served_api: str, setpoint: Invoke) -> None:
    result = await anyio.to_thread.run_sync(
        lambda: setpoint("reconcile", "product:shop/testing", "--wait", "--timeout", "1")
    )

    assert result.exit_code == 3 and ": pending" in result.output


PARKED_ON_A_BUILD = {
    "outcome": "waiting",
    "waiting_for": [
        {
            "action": "a1",
            "op": "deploy",
            "lane": "product:shop/testing",
            "message": "not yet: deployment d1 is building",
        }
    ],
    "due_at": "2026-12-07T18:00:00+00:00",
    "parked_since": "2026-12-07T17:59:00+00:00",
}


async def test_reconcile_waiting_on_a_parked_operation_says_what_it_waits_for(
    served_api: str, setpoint: Invoke, engine: Engine
) -> None:
    worker = when_queued(
        engine, OperationStatus.running, phase=OperationPhase.waiting, result=PARKED_ON_A_BUILD
    )
    result = await anyio.to_thread.run_sync(
        lambda: setpoint("reconcile", "product:shop/testing", "--wait", "--timeout", "2")
    )
    worker.join()
    assert result.exit_code == 3 and ": running (plan plan_abc)" in result.output, result.output
    assert "waiting: deploy a1: not yet: deployment d1 is building" in result.output
    assert "looked at again at 2026-12-07T18:00:00+00:00" in result.output


async def test_reconcile_says_in_one_line_why_the_api_refused(
    served_api: str, setpoint: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETPOINT_API_TOKEN", "spt_not-a-token")

    result = await anyio.to_thread.run_sync(lambda: setpoint("reconcile", "shop/testing"))

    assert result.exit_code == 1
    assert "the API refused (401 unauthenticated): the operator token is not valid" in result.output


async def test_the_service_stops_when_a_companion_fails(api: FastAPI) -> None:
    async def broken_loop() -> None:
        await anyio.sleep(0.2)
        raise RuntimeError("the loop died")

    with pytest.raises(BaseExceptionGroup) as failed:
        with anyio.fail_after(10):
            await run_service(api, "127.0.0.1", 0, [broken_loop])
    assert failed.group_contains(RuntimeError, match="the loop died")


async def test_a_port_in_use_is_one_clear_error(api: FastAPI) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotListen, match=f"cannot listen on 127.0.0.1:{port}"):
            await run_service(api, "127.0.0.1", port)


async def test_reconcile_passes_parameters_and_shows_the_kinds_refusal(
    served_api: str, setpoint: Invoke
) -> None:
    bad = await anyio.to_thread.run_sync(
        lambda: setpoint("reconcile", "shop/testing", "--param", "sha")
    )
    refused = await anyio.to_thread.run_sync(
        lambda: setpoint("reconcile", "shop/testing", "--param", "sha=abc")
    )

    assert bad.exit_code == 1 and "write it as KEY=VALUE" in bad.output
    assert refused.exit_code == 1 and "take no request parameters" in refused.output


async def test_sigterm_stops_the_server_gracefully_then_cancels_the_companions(
    api: FastAPI,
) -> None:
    """Where the loop plugs in: a companion runs beside the API and is cancelled (cleanly,
    not killed) once SIGTERM has stopped the server."""
    port = free_port()
    seen: list[str] = []

    async def loop_stand_in() -> None:
        async with httpx.AsyncClient(timeout=1) as http:
            with anyio.fail_after(10):
                while True:
                    try:
                        await http.get(f"http://127.0.0.1:{port}/healthz")
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.05)
        seen.append("serving")
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            await anyio.sleep_forever()
        finally:
            seen.append("cancelled")

    with anyio.fail_after(30):
        await run_service(api, "127.0.0.1", port, [loop_stand_in])

    assert seen == ["serving", "cancelled"]
