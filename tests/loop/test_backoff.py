"""A provider outage backs off instead of spinning; a permanent error is not retried."""

from __future__ import annotations

from datetime import timedelta

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
from reconciler.records.work_queue import queued
from reconciler.runtime import Runtime
from tests.loop.support import count_calls, fast_engine
from tests.reconciler.conftest import Workload


def _highest(low: float, high: float) -> float:
    """No jitter: the test sees the exponential steps themselves."""
    return high


async def _run_for(seconds: float, runtime: Runtime, **settings: object) -> None:
    loop = fast_engine(runtime, draw=_highest, **settings)
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run, 3600.0)
        await anyio.sleep(seconds)
        loop.request_stop()


async def test_a_provider_outage_backs_off_instead_of_spinning(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    emulator.faults.error_rate(ANY, 1.0, status=503)
    calls = count_calls(runtime)
    await _run_for(2.5, runtime)
    with session_scope(engine) as session:
        rows = queued(session)
    assert len(rows) == 6, "every lane is still queued, for later"
    for row in rows:
        # 0.2 + 0.4 + 0.8 + 1.0 (the cap): at most four or five tries in 2.5 s, not 50 polls
        assert 2 <= row.attempts <= 5, row
        # due_at moved out by the backoffs (0.2 + 0.4 + 0.8 ... s), not left where it was
        assert row.due_at - row.queued_at >= timedelta(seconds=0.5) and row.claimed_by is None
        assert row.last_error and "preflight_failed" in row.last_error
    preflights = calls.count("user.get")
    per_try = 3  # the client's own retries of a read
    assert preflights <= 5 * per_try * 2, calls  # bounded: tries x retries x (at most) 2 batches
    assert "project.all" not in calls, "a failed preflight gates the observation"


async def test_refused_credentials_are_not_retried_and_the_reason_is_on_the_status(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    emulator.faults.unauthorized()
    calls = count_calls(runtime)
    await _run_for(1.5, runtime)
    with session_scope(engine) as session:
        assert queued(session) == [], "given up: only a change brings the lanes back"
    assert calls == ["user.get"], "one preflight, never repeated"
    statuses = {row.lane: row.conditions for row in all_statuses(engine)}
    assert len(statuses) == 6
    for conditions in statuses.values():
        stalled = next(c for c in conditions if c["type"] == "Stalled")
        assert stalled["status"] == "True"
        assert stalled["reason"] == "credentials_refused" and "HTTP 401" in stalled["message"]


REASONS = declared_reasons()


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
    bucket = TokenBucket(rate=20.0, burst=2)
    started = anyio.current_time()
    for _ in range(6):
        await bucket.take()
    elapsed = anyio.current_time() - started
    assert 0.18 <= elapsed < 1.0  # four requests past the burst, 50 ms apart


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
