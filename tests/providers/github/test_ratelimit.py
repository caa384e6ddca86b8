"""Rate limits are honoured without hammering: waits are bounded, and beyond the cap the
caller gets GitHubRateLimited instead of a stream of refused requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate

import httpx
import pytest
from fastapi import FastAPI

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState, create_app
from providers.github.errors import GitHubForbidden, GitHubRateLimited
from providers.github.models import RunnerScope
from providers.github.pagination import parse_link_header
from providers.github.ratelimit import classify
from tests.providers.github.conftest import API_URL, TOKEN


class FakeTime:
    """One clock for the client and the emulator; sleeping advances it instantly."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def app(clock: FakeTime) -> FastAPI:
    return create_app(seed=3, state=EmulatorState(3, clock=clock))


@pytest.fixture
async def gh(app: FastAPI, clock: FakeTime) -> AsyncIterator[GitHubClient]:
    async with GitHubClient(
        API_URL,
        TOKEN,
        transport=httpx.ASGITransport(app=app),
        sleep=clock.sleep,
        clock=clock,
        max_rate_limit_wait_seconds=120,
    ) as client:
        yield client


def _state(app: FastAPI) -> EmulatorState:
    state: EmulatorState = app.state.emulator
    return state


async def test_exhausted_budget_waits_until_reset_then_succeeds(
    app: FastAPI, gh: GitHubClient, clock: FakeTime
) -> None:
    state = _state(app)
    state.add_repo("acme", "shop")
    state.set_rate_limit(remaining=0, reset_in=30)

    assert await gh.list_open_pulls("acme", "shop") == []
    assert 30 <= sum(clock.slept) <= 32  # reset plus at most a second of jitter


async def test_a_known_empty_budget_is_waited_out_before_sending(
    app: FastAPI, gh: GitHubClient, clock: FakeTime
) -> None:
    state = _state(app)
    state.add_repo("acme", "shop")
    state.set_rate_limit(remaining=1, reset_in=20)
    await gh.list_open_pulls("acme", "shop")  # spends the last request
    sent_before = len(state.requests)

    await gh.list_open_pulls("acme", "shop")

    assert len(state.requests) == sent_before + 1  # no refused request in between
    assert clock.slept == [pytest.approx(20, abs=1)]


async def test_a_reset_beyond_the_cap_raises_with_the_reset_time_and_stops_sending(
    app: FastAPI, gh: GitHubClient, clock: FakeTime
) -> None:
    state = _state(app)
    state.add_repo("acme", "shop")
    state.set_rate_limit(remaining=0, reset_in=3000)

    with pytest.raises(GitHubRateLimited) as limited:
        await gh.list_open_pulls("acme", "shop")
    with pytest.raises(GitHubRateLimited):
        await gh.list_open_pulls("acme", "shop")

    assert limited.value.reset_at is not None
    assert limited.value.reset_at.timestamp() == pytest.approx(clock.now + 3000, abs=1)
    assert len(state.requests) == 1  # the second call was refused locally
    assert clock.slept == []


async def test_secondary_limit_honours_retry_after_even_for_a_create(
    app: FastAPI, gh: GitHubClient, clock: FakeTime
) -> None:
    state = _state(app)
    state.add_repo("acme", "shop")
    state.faults.add(
        "secondary_rate_limit", method="POST", path="*/registration-token", seconds=7, times=1
    )

    await gh.create_registration_token(RunnerScope.for_repo("acme", "shop"))

    assert clock.slept and 7 <= clock.slept[0] <= 8
    assert [m for m, p in state.requests if p.endswith("registration-token")] == ["POST", "POST"]


async def test_secondary_limit_as_429_with_a_long_retry_after_raises(
    app: FastAPI, gh: GitHubClient
) -> None:
    state = _state(app)
    state.add_repo("acme", "shop")
    state.faults.add("secondary_rate_limit", status=429, seconds=600)

    with pytest.raises(GitHubRateLimited) as limited:
        await gh.list_open_pulls("acme", "shop")
    assert (limited.value.secondary, limited.value.retry_after) == (True, 600)


async def test_a_persistent_limit_gives_up_after_a_few_waits(
    app: FastAPI, gh: GitHubClient, clock: FakeTime
) -> None:
    state = _state(app)
    state.add_repo("acme", "shop")
    state.faults.add("secondary_rate_limit", seconds=1)

    with pytest.raises(GitHubRateLimited):
        await gh.list_open_pulls("acme", "shop")
    assert len(state.requests) == 4  # first try plus three waits, then stop


async def test_a_plain_403_is_a_permission_problem_not_a_rate_limit(
    app: FastAPI, gh: GitHubClient, clock: FakeTime
) -> None:
    state = _state(app)
    state.add_repo("acme", "shop")
    state.faults.add("error", status=403)

    with pytest.raises(GitHubForbidden):
        await gh.list_open_pulls("acme", "shop")
    assert clock.slept == []


def test_a_403_with_retry_after_as_an_http_date_is_a_secondary_limit() -> None:
    now = 1_800_000_000.0
    headers = {"retry-after": formatdate(now + 45, usegmt=True), "x-ratelimit-remaining": "9"}
    hit = classify(httpx.Response(403, headers=headers), now)
    assert hit is not None and hit.secondary
    assert hit.retry_after == hit.wait_seconds == 45


def test_link_header_parsing() -> None:
    value = '<https://x/r?page=2>; rel="next", <https://x/r?page=9>; rel="last"'
    assert parse_link_header(value) == {"next": "https://x/r?page=2", "last": "https://x/r?page=9"}
    assert parse_link_header(None) == {}
