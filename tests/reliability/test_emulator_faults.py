"""The two emulator controls the fault matrix added: an empty answer after the work, and a
per-procedure 429 that says when to come back, as a rate limiter's does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from providers.dokploy.emulator import Emulator, create_app

KEY = "emulator-fault-key"


@pytest.fixture
def emulator_app() -> object:
    return create_app(api_key=KEY, seed=3, build_seconds=0.01)


@pytest.fixture
async def http(emulator_app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator_app),  # type: ignore[arg-type]
        base_url="http://dokploy.test/api",
        headers={"x-api-key": KEY},
    ) as client:
        yield client


def _emulator(app: object) -> Emulator:
    emulator: Emulator = app.state.emulator  # type: ignore[attr-defined]
    return emulator


async def test_empty_body_does_the_work_and_answers_nothing(
    http: httpx.AsyncClient, emulator_app: object
) -> None:
    emulator = _emulator(emulator_app)
    emulator.faults.empty_body("project.create")
    answer = await http.post("/project.create", json={"name": "quiet"})
    assert answer.status_code == 200 and answer.content == b""
    assert emulator.summary()["projects"] == 1  # created all the same
    emulator.faults.empty_body("project.create", on=False)
    again = await http.post("/project.create", json={"name": "loud"})
    assert again.json()["project"]["name"] == "loud"


async def test_a_truncated_body_does_the_work_and_answers_half_its_json(
    http: httpx.AsyncClient, emulator_app: object
) -> None:
    emulator = _emulator(emulator_app)
    emulator.faults.truncated_body("project.create")
    answer = await http.post("/project.create", json={"name": "cut"})
    assert answer.status_code == 200 and answer.content.startswith(b"{")
    with pytest.raises(ValueError):
        answer.json()
    assert emulator.summary()["projects"] == 1  # created all the same


async def test_an_injected_429_says_when_to_retry(
    http: httpx.AsyncClient, emulator_app: object
) -> None:
    emulator = _emulator(emulator_app)
    emulator.faults.rate_limit(count=0, retry_after=0.25)
    emulator.faults.fail_next("project.all", 429)
    limited = await http.get("/project.all")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "0.25"
    assert (await http.get("/project.all")).status_code == 200
    emulator.faults.fail_next("project.all", 503)
    assert "retry-after" not in (await http.get("/project.all")).headers


async def test_the_controls_are_reachable_over_http(
    http: httpx.AsyncClient, emulator_app: object
) -> None:
    control = await http.post(
        "http://dokploy.test/__emulator/faults",
        json={"action": "empty_body", "procedure": "user.get"},
    )
    assert control.status_code == 200
    assert control.json()["procedures"]["user.get"]["empty_body"] is True
