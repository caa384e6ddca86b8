"""The line for a shared resource (a Dokploy server's build slot) on SQLite and PostgreSQL:
served in the order first asked, at most `capacity` holders, a place kept across asks, a
lapsed holder or waiter dropped, and one winner when two replicas ask at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from reconciler.records import turns
from reconciler.records.database import session_scope

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SLOT = "dokploy-build:http://dokploy.test|server-1"
LEASE = 100.0


def _take(
    engine: Engine, lane: str, *, at: float = 0.0, capacity: int = 1, in_line: bool = True
) -> turns.TurnAnswer:
    return turns.take(
        engine,
        SLOT,
        lane,
        capacity=capacity,
        now=T0 + timedelta(seconds=at),
        lease_seconds=LEASE,
        wait_in_line=in_line,
    )


def _give_back(engine: Engine, lane: str, *, at: float = 0.0) -> list[str]:
    with session_scope(engine) as session:
        return turns.give_back(session, SLOT, lane, capacity=1, now=T0 + timedelta(seconds=at))


def test_lanes_are_served_in_the_order_they_first_asked(engine: Engine) -> None:
    assert _take(engine, "a").granted
    assert _take(engine, "b", at=1) == turns.TurnAnswer(False, 1, ("a",))
    assert _take(engine, "c", at=2) == turns.TurnAnswer(False, 2, ("a",))
    # c asks again before b does: its place is behind b's, however often it asks.
    assert not _take(engine, "c", at=3).granted
    assert _give_back(engine, "a", at=3) == ["b"]  # the next in line, to be woken
    assert not _take(engine, "c", at=4).granted  # b asked first: the slot waits for b
    assert _take(engine, "b", at=5).granted
    assert _take(engine, "b", at=6).granted  # a holder asking again keeps it
    assert not _take(engine, "d", at=7).granted  # a newcomer goes to the back
    _give_back(engine, "b")
    assert _take(engine, "c", at=8).granted
    assert [row.lane for row in turns.line_of(engine, SLOT)] == ["c", "d"]


def test_capacity_lets_that_many_hold_at_once(engine: Engine) -> None:
    assert _take(engine, "a", capacity=2).granted
    assert _take(engine, "b", capacity=2).granted
    assert _take(engine, "c", capacity=2) == turns.TurnAnswer(False, 2, ("a", "b"))


def test_a_holder_whose_lease_ran_out_frees_the_slot(engine: Engine) -> None:
    assert _take(engine, "a").granted
    assert not _take(engine, "b", at=LEASE - 1).granted  # a's lease still runs
    with session_scope(engine) as session:  # b's place renewed with its wait
        turns.keep(session, SLOT, "b", now=T0 + timedelta(seconds=LEASE), lease_seconds=LEASE)
    assert _take(engine, "b", at=LEASE + 1).granted  # a died: nobody renewed its lease
    assert [row.lane for row in turns.line_of(engine, SLOT)] == ["b"]


def test_a_waiter_that_stopped_asking_loses_its_place(engine: Engine) -> None:
    assert _take(engine, "a").granted
    assert not _take(engine, "b", at=1).granted
    assert not _take(engine, "c", at=LEASE).granted
    _give_back(engine, "a")
    # b has not asked since: its place lapsed, and c is next.
    assert _take(engine, "c", at=LEASE + 2).granted


def test_a_lane_already_under_way_takes_a_free_slot_before_earlier_askers(
    engine: Engine,
) -> None:
    assert _take(engine, "a").granted
    assert not _take(engine, "b", at=1).granted
    assert not _take(engine, "c", at=2, in_line=False).granted  # taken: it looks, unheld
    _give_back(engine, "a")
    assert _take(engine, "c", at=3, in_line=False).granted
    assert not _take(engine, "b", at=4).granted


def test_two_replicas_asking_at_once_get_one_slot(engine: Engine) -> None:
    answers: dict[str, bool] = {}
    start = threading.Barrier(8)

    def ask(lane: str) -> None:
        start.wait()
        answers[lane] = _take(engine, lane).granted

    threads = [threading.Thread(target=ask, args=(f"lane-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(answers.values()) == 1, answers
    line = turns.line_of(engine, SLOT)
    assert len(line) == 8 and [r.lane for r in line if r.holding_since] == [
        lane for lane, granted in answers.items() if granted
    ]
