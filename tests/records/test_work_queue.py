"""The lane work queue on SQLite and PostgreSQL: one row per lane, priorities, claims that
lapse, requests that arrive while a lane is worked, and backoff that a scheduled pass
cannot cut short."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from reconciler.records import leases, work_queue
from reconciler.records.database import session_scope, table_of
from reconciler.records.work_queue import WorkPriority
from tests.support.processes import dead_process

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _enqueue(engine: Engine, lanes: list[str], priority: WorkPriority, at: datetime = T0) -> None:
    with session_scope(engine) as session:
        work_queue.enqueue(session, lanes, priority, f"{priority.name} request", at)


def _claim(engine: Engine, worker: str, at: datetime = T0, limit: int = 10) -> list[str]:
    with session_scope(engine, write_lock=True) as session:
        found = work_queue.claim(session, worker, at, limit=limit, hold_seconds=60)
    return [work.lane for work in found]


def test_a_lane_queued_twice_runs_once_at_the_higher_priority(engine: Engine) -> None:
    _enqueue(engine, ["product:a/x", "product:b/x"], WorkPriority.scheduled)
    _enqueue(engine, ["product:b/x"], WorkPriority.workflow)
    with session_scope(engine) as session:
        queued = work_queue.queued(session)
    assert [(w.lane, w.priority) for w in queued] == [
        ("product:b/x", WorkPriority.workflow),
        ("product:a/x", WorkPriority.scheduled),
    ]
    # The request is claimed alone (its survey waits for no scheduled lane), then the rest.
    assert _claim(engine, "w1") == ["product:b/x"]
    assert _claim(engine, "w2") == ["product:a/x"]


def test_claimed_lanes_are_not_claimed_again_until_the_claim_lapses(engine: Engine) -> None:
    _enqueue(engine, ["product:a/x"], WorkPriority.scheduled)
    assert _claim(engine, "w1") == ["product:a/x"]
    assert _claim(engine, "w2") == []
    assert _claim(engine, "w2", at=T0 + timedelta(seconds=61)) == ["product:a/x"]


def test_a_request_during_work_keeps_the_lane_queued(engine: Engine) -> None:
    _enqueue(engine, ["product:a/x", "product:b/x"], WorkPriority.scheduled)
    _claim(engine, "w1")
    _enqueue(engine, ["product:a/x"], WorkPriority.webhook, at=T0 + timedelta(seconds=5))
    with session_scope(engine) as session:
        work_queue.finish_done(session, "w1", "product:a/x")
        work_queue.finish_done(session, "w1", "product:b/x")
        remaining = work_queue.queued(session)
    assert [(w.lane, w.claimed_by) for w in remaining] == [("product:a/x", None)]
    assert _claim(engine, "w2", at=T0 + timedelta(seconds=6)) == ["product:a/x"]


def test_backoff_holds_a_lane_against_scheduled_passes_but_not_requests(engine: Engine) -> None:
    _enqueue(engine, ["product:a/x"], WorkPriority.scheduled)
    _claim(engine, "w1")
    retry_at = T0 + timedelta(minutes=5)
    with session_scope(engine) as session:
        work_queue.finish_retry(session, "w1", "product:a/x", retry_at=retry_at, error="503")
    _enqueue(engine, ["product:a/x"], WorkPriority.scheduled, at=T0 + timedelta(minutes=1))
    assert _claim(engine, "w1", at=T0 + timedelta(minutes=1)) == []
    with session_scope(engine) as session:
        (row,) = work_queue.queued(session)
    assert (row.attempts, row.last_error, row.due_at) == (1, "503", retry_at)
    _enqueue(engine, ["product:a/x"], WorkPriority.workflow, at=T0 + timedelta(minutes=2))
    assert _claim(engine, "w1", at=T0 + timedelta(minutes=2)) == ["product:a/x"]


def test_concurrent_claimers_never_take_the_same_lane(engine: Engine) -> None:
    lanes = [f"product:p{i}/x" for i in range(60)]
    _enqueue(engine, lanes, WorkPriority.scheduled)
    taken: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        mine: list[str] = []
        while batch := _claim(engine, name, limit=3):
            mine.extend(batch)
        taken[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [lane for mine in taken.values() for lane in mine]
    assert sorted(every) == sorted(lanes)


def test_a_claim_whose_process_on_this_host_is_gone_is_taken_at_once(engine: Engine) -> None:
    """A restarted loop does not wait for its dead predecessor's claims to lapse: the clock
    is not moved, and the claim had 60 s to run."""
    _enqueue(engine, ["product:a/x", "product:b/x"], WorkPriority.scheduled)
    pid, started = dead_process()
    dead = leases.Holder(label="crashed-loop", pid=pid, pid_started=started)
    with session_scope(engine, write_lock=True) as session:
        work_queue.claim(session, "alive", T0, limit=1, hold_seconds=60)
        work_queue.claim(session, "crashed-loop", T0, limit=1, hold_seconds=60, holder=dead)
    with session_scope(engine) as session:
        assert work_queue.claimed_lanes(session, T0) == {"product:a/x"}  # the live one only
    assert _claim(engine, "restarted") == ["product:b/x"]
    # A live claim on this host is not taken, whoever asks.
    assert _claim(engine, "another") == []
    with session_scope(engine) as session:
        claimed = {w.lane: w.claimed_by for w in work_queue.queued(session)}
    assert claimed == {"product:a/x": "alive", "product:b/x": "restarted"}


def test_a_queued_request_rings_this_process_loops_once_its_transaction_commits(
    engine: Engine,
) -> None:
    """A loop hears of a request at once (not at its next poll), and only of one that was
    committed: a request it could not yet claim, or never will, wakes nobody."""
    rung: list[str] = []
    stop = work_queue.listen_for_requests(engine, lambda: rung.append("request"))
    try:
        _enqueue(engine, ["product:a/x"], WorkPriority.scheduled)
        assert rung == [], "a scheduled pass's lanes are found by polling"
        try:
            with session_scope(engine) as session:
                work_queue.enqueue(session, ["product:b/x"], WorkPriority.workflow, "w", T0)
                assert rung == [], "not before the transaction commits"
                raise RuntimeError("the request's transaction fails")
        except RuntimeError:
            pass
        assert rung == [], "a request rolled back is not there to claim"
        _enqueue(engine, ["product:b/x"], WorkPriority.workflow)
        assert rung == ["request"]
        _enqueue(engine, ["product:c/x"], WorkPriority.webhook)
        assert rung == ["request", "request"]
    finally:
        stop()
    _enqueue(engine, ["product:d/x"], WorkPriority.workflow)
    assert rung == ["request", "request"], "a loop that stopped listening is not rung"


def test_a_request_for_a_lane_a_batch_holds_rings_again_when_the_batch_gives_it_back(
    engine: Engine,
) -> None:
    """The request worker heard the request, but the lane was claimed by a scheduled batch:
    when the batch is done with the lane, the request is still queued and the loop is rung
    again (it would otherwise wait out a poll); a batch with no request meanwhile rings none."""
    _enqueue(engine, ["product:a/x", "product:b/x"], WorkPriority.scheduled)
    assert sorted(_claim(engine, "batch")) == ["product:a/x", "product:b/x"]
    rung: list[str] = []
    stop = work_queue.listen_for_requests(engine, lambda: rung.append("request"))
    try:
        _enqueue(engine, ["product:a/x"], WorkPriority.workflow)
        assert rung == ["request"]
        assert _claim(engine, "requests") == [], "the batch holds the lane"
        with session_scope(engine) as session:
            work_queue.finish_done(session, "batch", "product:b/x")
        assert rung == ["request"], "no request came for b"
        with session_scope(engine) as session:
            work_queue.finish_done(session, "batch", "product:a/x")
        assert rung == ["request", "request"], "a's request is there to claim now"
        assert _claim(engine, "requests") == ["product:a/x"]
    finally:
        stop()


def test_a_scheduled_pass_that_rewrites_a_waiting_request_rings_once_it_commits(
    engine: Engine,
) -> None:
    """A scheduled pass's upsert holds the request's row until it commits, and the request
    worker's claim skips locked rows (PostgreSQL): the worker that heard the request found
    nothing, so the pass's commit rings again; a pass that meets no request rings none."""
    _enqueue(engine, ["product:a/x"], WorkPriority.workflow)
    rung: list[str] = []
    stop = work_queue.listen_for_requests(engine, lambda: rung.append("request"))
    try:
        _enqueue(engine, ["product:b/x", "product:c/x"], WorkPriority.scheduled)
        assert rung == [], "no request is waiting among these lanes"
        _enqueue(engine, ["product:a/x", "product:b/x"], WorkPriority.scheduled)
        assert rung == ["request"], "a's request is still there to claim"
        assert _claim(engine, "requests") == ["product:a/x"]
        _enqueue(engine, ["product:a/x", "product:b/x"], WorkPriority.scheduled)
        assert rung == ["request"], "a's request is claimed: its release rings when it is due"
    finally:
        stop()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    queued=st.dictionaries(
        st.sampled_from([f"product:p{i}/x" for i in range(12)]),
        st.sampled_from(list(WorkPriority)),
        min_size=1,
    ),
    limits=st.lists(st.integers(min_value=1, max_value=5), min_size=12, max_size=12),
)
def test_claims_take_every_request_before_any_scheduled_lane_and_never_mix_them(
    engine: Engine, queued: dict[str, WorkPriority], limits: list[int]
) -> None:
    """Whatever is queued and however much each claim may take: no claim holds a request
    beside a scheduled lane (a request's survey is its own), every request is claimed
    before any scheduled lane, and every lane is claimed exactly once."""
    with session_scope(engine) as session:
        session.execute(table_of(work_queue.LaneWork).delete())
    for lane, priority in queued.items():
        _enqueue(engine, [lane], priority)
    claims: list[list[WorkPriority]] = []
    seen: list[str] = []
    for index, limit in enumerate(limits):
        with session_scope(engine, write_lock=True) as session:
            found = work_queue.claim(session, f"w{index}", T0, limit=limit, hold_seconds=60)
        claims.append([work.priority for work in found])
        seen += [work.lane for work in found]
    requests = [p for p in queued.values() if p is not WorkPriority.scheduled]
    for claimed in claims:
        kinds = {p is WorkPriority.scheduled for p in claimed}
        assert len(kinds) <= 1, f"a claim mixed requests and scheduled lanes: {claimed}"
    order = [p for claimed in claims for p in claimed]
    assert order[: len(requests)] == sorted(requests)
    assert sorted(seen) == sorted(queued), "each lane claimed once, none left"
