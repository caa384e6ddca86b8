"""Lane leases: one worker per lane, also across engines racing on one database."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from reconciler.errors import LaneBusy, LeaseLost
from reconciler.records import leases
from reconciler.records.database import make_engine
from reconciler.runtime import ShiftedClock, utcnow
from tests.support.processes import dead_process


@pytest.fixture
def clock() -> ShiftedClock:
    """The leases' clock: tests move it past a TTL instead of waiting one out."""
    return ShiftedClock()


def test_second_holder_is_refused_until_release(engine: Engine) -> None:
    assert leases.acquire(engine, "product:shop/prod", "worker-a", 60, clock=utcnow)
    assert not leases.acquire(engine, "product:shop/prod", "worker-b", 60, clock=utcnow)
    assert leases.acquire(
        engine, "product:shop/prod", "worker-a", 60, clock=utcnow
    )  # re-entrant for its holder
    assert not leases.release(engine, "product:shop/prod", "worker-b")  # not b's to give up
    assert leases.release(engine, "product:shop/prod", "worker-a")
    assert leases.acquire(engine, "product:shop/prod", "worker-b", 60, clock=utcnow)


def test_expired_lease_can_be_taken_over_and_the_old_holder_loses_it(
    engine: Engine, clock: ShiftedClock
) -> None:
    assert leases.acquire(engine, "product:shop/testing", "worker-a", 30, clock=clock.now)
    clock.advance(29)
    assert not leases.acquire(engine, "product:shop/testing", "worker-b", 60, clock=clock.now)
    clock.advance(2)
    assert leases.acquire(engine, "product:shop/testing", "worker-b", 60, clock=clock.now)
    assert not leases.renew(engine, "product:shop/testing", "worker-a", 60, clock=clock.now)
    assert not leases.release(engine, "product:shop/testing", "worker-a")
    lease = leases.current(engine, "product:shop/testing")
    assert lease is not None and lease.holder == "worker-b"


def test_renew_extends_the_lease(engine: Engine, clock: ShiftedClock) -> None:
    assert leases.acquire(engine, "l", "a", 30, clock=clock.now)
    clock.advance(20)
    assert leases.renew(engine, "l", "a", 30, clock=clock.now)
    clock.advance(20)  # 40 s after the take, 20 s after the renewal
    assert not leases.acquire(engine, "l", "b", 60, clock=clock.now)
    clock.advance(11)
    assert leases.acquire(engine, "l", "b", 60, clock=clock.now)


def test_hold_takes_all_or_none_and_names_the_holder(engine: Engine) -> None:
    assert leases.acquire(engine, "shop/b", "other", 60, clock=utcnow)
    with (
        pytest.raises(LaneBusy) as busy,
        leases.hold(engine, ["shop/c", "shop/a", "shop/b"], "me", clock=utcnow),
    ):
        pytest.fail("the block must not run while a lane is busy")
    assert busy.value.lane == "shop/b" and busy.value.holder == "other"
    assert busy.value.expires_at is not None
    assert "shop/b is being reconciled by other" in str(busy.value)
    # shop/a was taken before shop/b was found busy, and given back.
    assert leases.current(engine, "shop/a") is None
    assert leases.current(engine, "shop/c") is None


def test_hold_releases_on_exit_and_on_error(engine: Engine) -> None:
    with leases.hold(engine, ["x", "y"], "me", ttl_seconds=60, clock=utcnow) as held:
        assert held.lanes == ("x", "y")
        assert not leases.acquire(engine, "x", "other", 60, clock=utcnow)
        held.renew()
    assert leases.acquire(engine, "x", "other", 60, clock=utcnow)
    with pytest.raises(RuntimeError), leases.hold(engine, ["z"], "me", clock=utcnow):
        raise RuntimeError("apply failed")
    assert leases.current(engine, "z") is None


def test_a_worker_that_stops_beating_loses_its_lanes(engine: Engine, clock: ShiftedClock) -> None:
    # no heartbeat running
    held = leases.take_all(engine, ["slow"], "me", ttl_seconds=30, clock=clock.now)
    clock.advance(31)
    assert leases.acquire(engine, "slow", "other", 60, clock=clock.now)
    with pytest.raises(LeaseLost):
        held.renew()
    assert held.lost is not None and "slow" in held.lost
    # giving back what we no longer hold must not free the lane the other worker now holds
    assert not leases.release(engine, "slow", "me")
    assert not leases.acquire(engine, "slow", "third", 60, clock=clock.now)


def test_the_heartbeat_keeps_a_lease_alive_past_its_ttl(
    engine: Engine, clock: ShiftedClock
) -> None:
    # The heartbeat sleeps a third of the TTL in real time between beats; a beat renews the
    # lease for a TTL from then, which must outlast the (loaded) moment until the check.
    ttl = 3.0
    with leases.hold(engine, ["long"], "me", ttl_seconds=ttl, clock=clock.now) as held:
        # Three TTLs of lease time pass; each is answered by a real beat before the next.
        for _ in range(3):
            clock.advance(ttl)
            beaten = leases.current(engine, "long")
            assert beaten is not None
            _wait_for_beat(engine, "long", after=beaten.expires_at)
            assert not leases.acquire(engine, "long", "other", 60, clock=clock.now)
        assert held.lost is None
    assert leases.acquire(engine, "long", "other", 60, clock=clock.now)


def _wait_for_beat(engine: Engine, lane: str, *, after: datetime) -> None:
    """Until the heartbeat renews `lane` past `after` (polled, with a deadline)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lease = leases.current(engine, lane)
        if lease is not None and lease.expires_at > after:
            return
        time.sleep(0.02)
    pytest.fail(f"no heartbeat renewed {lane} within 10 s")


def test_a_lease_whose_process_is_gone_is_taken_over_at_once(engine: Engine) -> None:
    pid, started = dead_process()
    dead = leases.Holder(label="crashed", plan_id="plan-x", pid=pid, pid_started=started)
    assert leases.acquire(
        engine, "lane/a", dead, ttl_seconds=600, clock=utcnow
    )  # far from expiring
    lease = leases.current(engine, "lane/a")
    assert lease is not None and leases.holder_gone(lease, utcnow())
    held = leases.take_all(engine, ["lane/a"], "successor", ttl_seconds=60, clock=utcnow)
    assert [t.holder for t in held.taken_over] == ["crashed"]
    # A live holder on this host is not gone, however it is named.
    assert not leases.acquire(engine, "lane/a", "third", 60, clock=utcnow)


@pytest.mark.parametrize("expired_first", [False, True])
def test_racing_engines_exactly_one_wins(
    database_url: str, engine: Engine, expired_first: bool
) -> None:
    racers, rounds = 4, 5
    lanes = [f"race/{n}" for n in range(rounds)]
    engines = [make_engine(database_url) for _ in range(racers)]
    if expired_first:
        _leave_expired_leases(engine, lanes)
    try:
        wins, failures = _race(engines, lanes)
    finally:
        for own in engines:
            own.dispose()
    assert failures == []
    assert sorted(lane for lane, _ in wins) == lanes
    for lane, winner in wins:
        lease = leases.current(engine, lane)
        assert lease is not None and lease.holder == winner


def _leave_expired_leases(engine: Engine, lanes: list[str]) -> None:
    # The racers must then take over an expired row, not insert a fresh one: these leases
    # were taken an hour ago by the clock's account, for a minute.
    an_hour_ago = ShiftedClock(offset=-3600).now
    for lane in lanes:
        assert leases.acquire(engine, lane, "gone", 60, clock=an_hour_ago)


def _race(
    engines: list[Engine], lanes: list[str]
) -> tuple[list[tuple[str, str]], list[BaseException]]:
    """Each engine on its own thread tries every lane in turn; a barrier starts each round
    for all of them at once. Returns (lane, winner) pairs and what the threads raised."""
    wins: list[tuple[str, str]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def race(own: Engine, name: str) -> None:
        try:
            for lane in lanes:
                start.wait()
                if leases.acquire(own, lane, name, 60, clock=utcnow):
                    wins.append((lane, name))
        except BaseException as error:  # a thread's exception is otherwise lost
            failures.append(error)
            start.abort()

    threads = [threading.Thread(target=race, args=(e, f"w{i}")) for i, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wins, failures


def test_confirm_proves_the_lease_and_beats_its_heart_on_the_given_clock(
    engine: Engine, clock: ShiftedClock
) -> None:
    holder, other = leases.Holder(label="worker-a"), leases.Holder(label="worker-b")
    assert leases.take(engine, "product:shop/prod", holder, 30, clock=clock.now)[0]
    beat = clock.now() + timedelta(seconds=12)  # the runtime's clock, not the wall's
    with Session(engine) as session, session.begin():
        leases.confirm(session, "product:shop/prod", holder, beat)
    lease = leases.current(engine, "product:shop/prod")
    assert lease is not None and lease.heartbeat_at == beat
    with pytest.raises(LeaseLost), Session(engine) as session, session.begin():
        leases.confirm(session, "product:shop/prod", other, beat + timedelta(seconds=1))
    with pytest.raises(LeaseLost), Session(engine) as session, session.begin():
        leases.confirm(session, "product:shop/testing", holder, beat + timedelta(seconds=1))
    unchanged = leases.current(engine, "product:shop/prod")
    assert unchanged is not None and unchanged.heartbeat_at == beat
