"""A provider outage backs off instead of spinning; a permanent error is not retried."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator
from providers.dokploy.emulator.app import create_app
from providers.dokploy.emulator.faults import ANY
from reconciler.core.plans import Blocker, BlockerType
from reconciler.kinds import declared_reasons
from reconciler.kinds.product.reasons import DEPLOY_FAILED, ROUTE_CONFLICT
from reconciler.kinds.runner.reasons import HOST_FULL
from reconciler.loop.backoff import (
    FailureClass,
    classify_blocker,
    classify_refusal,
    retry_delay,
)
from reconciler.loop.buckets import TokenBucket, install_rate_limits
from reconciler.records import status
from reconciler.records.database import session_scope
from reconciler.records.status import all_statuses
from reconciler.records.work_queue import LaneWork, queued
from reconciler.runtime import Runtime, ShiftedClock
from tests.loop.support import count_calls, fast_engine, wait_for
from tests.reconciler.conftest import Workload
from tests.support.still_clock import StillClock


def _highest(low: float, high: float) -> float:
    """No jitter: the test sees the exponential steps themselves."""
    return high


def _queue(engine: Engine) -> list[LaneWork]:
    with session_scope(engine) as session:
        return queued(session)


def _tried(engine: Engine, times: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        rows = _queue(engine)
        return len(rows) == 6 and all(r.attempts >= times and r.claimed_by is None for r in rows)

    return check


async def test_a_provider_outage_backs_off_instead_of_spinning(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    """The loop polls every 0.05 real seconds; the backoff runs on the runtime's clock, which
    only the test moves: each try happens only once the clock passes its due time."""
    emulator.faults.error_rate(ANY, 1.0, status=503)
    clock = ShiftedClock()
    runtime.clock = clock
    calls = count_calls(runtime)
    loop = fast_engine(
        runtime, draw=_highest, loop_backoff_base_seconds=60, loop_backoff_cap_seconds=200
    )
    waits = []
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run, 3600.0)
        for tries, backoff in enumerate([60, 120, 200, 200], start=1):  # doubling to the cap
            await wait_for(_tried(engine, tries))
            rows = _queue(engine)
            assert {r.attempts for r in rows} == {tries}, "no lane tried again before it was due"
            waits.append({round((r.due_at - clock.now()).total_seconds()) for r in rows})
            clock.advance(backoff)
        loop.request_stop()
    # Each due time is its backoff from the failure (give or take the real seconds a try took).
    for waited, backoff in zip(waits, [60, 120, 200, 200], strict=True):
        assert all(backoff - 5 <= w <= backoff for w in waited), (waits, backoff)
    for row in _queue(engine):
        assert row.last_error and "preflight_failed" in row.last_error
    preflights = calls.count("user.get")
    per_try = 3  # the client's own retries of a read
    assert preflights <= 5 * per_try * 2, calls  # bounded: tries x retries x (at most) 2 batches
    assert "project.all" not in calls, "a failed preflight gates the observation"


def _at_once(low: float, high: float) -> float:
    """The shortest backoff jitter may draw: the lane is due again as soon as it failed."""
    return low


async def test_a_once_run_works_each_lane_once_even_when_its_retry_is_already_due(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    emulator.faults.error_rate(ANY, 1.0, status=503)
    runtime.clock = lambda: 1_000.0  # the clock stands still: a retry at "now" is due
    loop = fast_engine(runtime, draw=_at_once, loop_batch_size=2)
    with anyio.fail_after(60):
        report = await loop.run_once()
    assert len(report.lanes) == 6, "each lane once, none again in the same run"
    assert len({i.lane for i in loop.work_log}) == len(loop.work_log) == 6
    rows = _queue(engine)
    assert len(rows) == 6 and {r.attempts for r in rows} == {1}, "they stay queued, due"


async def test_refused_credentials_are_not_retried_and_the_reason_is_on_the_status(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    emulator.faults.unauthorized()
    calls = count_calls(runtime)
    loop = fast_engine(runtime, draw=_highest)
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run, 3600.0)
        await wait_for(_given_up(engine))  # given up: only a change brings the lanes back
        loop.request_stop()
    assert calls == ["user.get"], "one preflight, never repeated"
    statuses = {row.lane: row.conditions for row in all_statuses(engine)}
    assert len(statuses) == 6
    for conditions in statuses.values():
        stalled = next(c for c in conditions if c["type"] == "Stalled")
        assert stalled["status"] == "True"
        assert stalled["reason"] == "credentials_refused" and "HTTP 401" in stalled["message"]


REASONS = declared_reasons()


def _given_up(engine: Engine) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(all_statuses(engine)) and _queue(engine) == []

    return check


@pytest.mark.parametrize(
    ("blocker", "expected"),
    [
        (BlockerType.preflight_failed, FailureClass.temporary),
        (BlockerType.credentials_refused, FailureClass.permanent),
        (BlockerType.observation_incomplete, FailureClass.temporary),
        (BlockerType.stale_plan, FailureClass.temporary),
        (BlockerType.invalid_desired_state, FailureClass.permanent),
        (BlockerType.not_owned, FailureClass.permanent),
        (ROUTE_CONFLICT.code, FailureClass.permanent),
        (DEPLOY_FAILED.code, FailureClass.temporary),  # its backoff ends
        (HOST_FULL.code, FailureClass.permanent),
        (BlockerType.access_denied, FailureClass.permanent),
        (BlockerType.lane_busy, FailureClass.temporary),
        (BlockerType.target_busy, FailureClass.temporary),
        ("a_reason_nobody_declares", FailureClass.permanent),  # an older kind's, say
    ],
)
def test_blockers_are_temporary_or_permanent(blocker: str, expected: FailureClass) -> None:
    assert classify_blocker(Blocker(type=blocker, lane=None, message="x"), REASONS) is expected


def test_refused_credentials_are_told_by_type_not_by_the_message() -> None:
    """A provider's message may mention any status; only the kind's typed verdict counts."""
    message = "Dokploy preflight failed: user.get: Unauthorized (HTTP 401)"
    refused = Blocker(type=BlockerType.credentials_refused, lane=None, message=message)
    down = Blocker(type=BlockerType.preflight_failed, lane=None, message=message)
    assert classify_blocker(refused, REASONS) is FailureClass.permanent
    assert classify_blocker(down, REASONS) is FailureClass.temporary
    assert classify_refusal(refused) is FailureClass.permanent


def test_backoff_doubles_to_its_cap_with_full_jitter() -> None:
    steps = [retry_delay(n, base=5, cap=60, draw=_highest) for n in range(1, 7)]
    assert steps == [5, 10, 20, 40, 60, 60]
    assert retry_delay(3, base=5, cap=60, draw=lambda low, high: low) == 0.0
    assert retry_delay(10_000, base=5, cap=60, draw=_highest) == 60


async def test_a_token_bucket_spaces_requests_beyond_its_burst() -> None:
    clock = StillClock()  # no time passes between takes but what the bucket sleeps
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the bucket's wait, moving its clock instead
        slept.append(seconds)
        clock.advance(seconds)

    bucket = TokenBucket(rate=20.0, burst=2, clock=clock, sleep=sleep)
    for _ in range(6):
        await bucket.take()
    # The burst goes at once; the four requests past it wait 50 ms each.
    assert slept == pytest.approx([0.05] * 4, abs=0.005)
    assert bucket.waited == pytest.approx(0.2, abs=0.02)


async def test_the_rate_limit_counts_every_request_a_provider_client_sends() -> None:
    app = create_app(api_key="k", seed=1, build_seconds=0.0)
    client = DokployClient("http://dokploy.test", "k", transport=httpx.ASGITransport(app=app))
    limits = {"dokploy": 1e-6, "host": 1e-6}  # next to no refill: the tokens left count requests
    buckets = install_rate_limits({"dokploy": client, "host": object()}, limits, burst=5)
    assert set(buckets) == {"dokploy"}, "a provider that sends no HTTP gets no bucket"
    async with client:
        for _ in range(3):
            await client.project_all()
    assert 2.0 <= buckets["dokploy"].available() < 2.1, "three requests took three of five tokens"


async def test_a_kinds_not_yet_waits_for_the_time_it_named_without_counting_a_failure(
    runtime: Runtime, engine: Engine, workload: Workload
) -> None:
    workload.status = 503  # deployed, but the health check fails: the kind says "not yet"
    report = await fast_engine(runtime).run_once()
    waiting = {r.lane for r in report.lanes if r.outcome == "waiting"}
    assert "product:shop/testing" in waiting
    retry_at = status.retry_times(engine)
    with session_scope(engine) as session:
        rows = {row.lane: row for row in queued(session)}
    for lane in waiting:
        assert rows[lane].due_at == retry_at[lane], "back when the kind said, not sooner"
        assert rows[lane].attempts == 0, "a kind's 'not yet' is not a failure"
