"""A flood of refused requests cannot flood the audit trail: per source and reason, the
first refusal of a minute is recorded as it happened and the rest are summed up in one
record once the minute is over; every refusal is still counted in the metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reconciler.api.refusals import flush_refusals
from reconciler.api.service_state import ApiState
from reconciler.composition import create_service
from reconciler.records.audit_events import AuditEvent
from reconciler.runtime import Runtime, ShiftedClock
from tests.api.conftest import audit_events, bearer

LANES = "/v1/lanes"
FLOOD = 300


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def flood_api(api_runtime: Runtime, clock: ShiftedClock) -> FastAPI:
    return create_service(dataclasses.replace(api_runtime, clock=clock))


@pytest.fixture
async def attacker(flood_api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=flood_api, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://setpoint.test") as http:
        yield http


def _denied(engine: Engine) -> list[dict[str, object]]:
    return [
        dict(r.data)
        for r in sorted(audit_events(engine, AuditEvent.api_denied), key=lambda r: r.seq)
    ]


async def test_300_bad_tokens_from_one_source_write_one_record_then_one_summary(
    attacker: httpx.AsyncClient, flood_api: FastAPI, engine: Engine, clock: ShiftedClock
) -> None:
    for n in range(FLOOD):
        answer = await attacker.get(LANES, headers=bearer(f"spt_forged{n:04d}"))
        assert answer.status_code == 401
    [first] = _denied(engine)
    assert first["reason"] == "bad_operator_token" and first["source"] == "203.0.113.7"

    neighbour = httpx.ASGITransport(app=flood_api, client=("198.51.100.2", 40001))
    async with httpx.AsyncClient(transport=neighbour, base_url="http://setpoint.test") as other:
        assert (await other.get(LANES)).status_code == 401  # another source: its own record
    assert [d["source"] for d in _denied(engine)] == ["203.0.113.7", "198.51.100.2"]

    clock.offset += 61  # the minute is over: the next refusal brings its summary
    assert (await attacker.get(LANES, headers=bearer("spt_forged-again"))).status_code == 401
    records = _denied(engine)
    [summary] = [d for d in records if d.get("summary")]
    assert summary["count"] == FLOOD - 1 and summary["source"] == "203.0.113.7"
    assert summary["reason"] == "bad_operator_token"
    assert len(records) == 4  # first, neighbour, summary, the new minute's first

    metrics = (await attacker.get("/metrics")).text
    assert 'setpoint_api_denials_total{reason="bad_operator_token"} 301.0' in metrics


async def test_a_stopping_service_writes_the_summary_of_its_last_minute(
    attacker: httpx.AsyncClient, flood_api: FastAPI, engine: Engine
) -> None:
    for _ in range(5):
        await attacker.get(LANES)
    state: ApiState = flood_api.state.setpoint
    await flush_refusals(engine, state.refusals)
    records = _denied(engine)
    assert [(d["reason"], d.get("count")) for d in records] == [
        ("missing_token", None),
        ("missing_token", 4),
    ]
