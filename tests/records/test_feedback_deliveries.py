"""Feedback deliveries of one pull request land in the order they were made, each once,
whatever GitHub answers meanwhile; two senders never hold one delivery at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from reconciler.records import feedback_deliveries as deliveries
from reconciler.records.database import session_scope, table_of
from reconciler.records.feedback_deliveries import FeedbackDelivery, NewDelivery

START = datetime(2026, 12, 1, tzinfo=UTC)
KINDS = ("preview",)


def _forget_all(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.execute(table_of(FeedbackDelivery).delete())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    channels=st.lists(st.sampled_from(["pr#1", "pr#2", "pr#3"]), min_size=1, max_size=8),
    answers=st.lists(st.sampled_from(["ok", "transient", "refused"]), max_size=40),
)
def test_each_channel_lands_in_order_and_once_whatever_github_answers(
    engine: Engine, channels: list[str], answers: list[str]
) -> None:
    _forget_all(engine)
    with session_scope(engine) as session:
        made = deliveries.add_deliveries(
            session,
            [NewDelivery("preview", f"lane-{c}", c, {"n": i}) for i, c in enumerate(channels)],
            START,
        )
    landed: list[int] = []
    now = START
    answers_left = list(answers)
    for _ in range(len(channels) + len(answers) + 1):
        with session_scope(engine, write_lock=True) as session:
            claimed = deliveries.claim_due(session, "sender", now, hold_seconds=60, kinds=KINDS)
        for row in claimed:
            answer = answers_left.pop(0) if answers_left else "ok"
            row_id = int(row.id or 0)
            with session_scope(engine) as session:
                if answer == "ok":
                    deliveries.mark_delivered(session, row_id, "sender", {}, now)
                    landed.append(row_id)
                else:
                    retry = now + timedelta(seconds=5) if answer == "transient" else None
                    deliveries.mark_undelivered(
                        session, row_id, "sender", {"error": answer}, now, retry_at=retry
                    )
        now += timedelta(seconds=10)  # every backoff is over by the next round
    assert len(landed) == len(set(landed))  # none twice
    with session_scope(engine) as session:
        rows = {
            row.id: row
            for c in set(channels)
            for row in deliveries.deliveries_of_lane(session, f"lane-{c}")
        }
    for channel in set(channels):
        ids = [i for i in made if rows[i].channel == channel]
        # A channel's deliveries land in the order they were made (a refused one is skipped).
        assert [i for i in landed if i in ids] == [i for i in ids if rows[i].state == "delivered"]
        assert all(rows[i].state != "pending" for i in ids)  # all settled with enough rounds


def test_a_claimed_delivery_is_not_claimed_again_until_its_hold_lapses(engine: Engine) -> None:
    with session_scope(engine) as session:
        [made] = deliveries.add_deliveries(
            session, [NewDelivery("preview", "lane", "pr#1", {})], START
        )
    with session_scope(engine, write_lock=True) as session:
        [first] = deliveries.claim_due(session, "a", START, hold_seconds=60, kinds=KINDS)
    with session_scope(engine, write_lock=True) as session:
        assert deliveries.claim_due(session, "b", START, hold_seconds=60, kinds=KINDS) == []
        assert deliveries.claim_due(session, "b", START, hold_seconds=60, kinds=()) == []
    later = START + timedelta(seconds=61)  # "a" died holding it
    with session_scope(engine, write_lock=True) as session:
        [again] = deliveries.claim_due(session, "b", later, hold_seconds=60, kinds=KINDS)
    assert first.id == again.id == made
    with session_scope(engine) as session:  # "a" comes back late: its answer is not taken
        deliveries.mark_delivered(session, made, "a", {"from": "a"}, later)
        [row] = deliveries.deliveries_of_lane(session, "lane")
    assert (row.state, row.claimed_by) == ("pending", "b")


def test_settled_deliveries_are_pruned_and_pending_ones_kept(engine: Engine) -> None:
    items = [NewDelivery("preview", "lane", f"pr#{n}", {}) for n in range(3)]
    with session_scope(engine) as session:
        sent, refused, waiting = deliveries.add_deliveries(session, items, START)
    with session_scope(engine, write_lock=True) as session:
        deliveries.claim_due(session, "s", START, hold_seconds=60, kinds=KINDS)
    with session_scope(engine) as session:
        deliveries.mark_delivered(session, sent, "s", {}, START)
        deliveries.mark_undelivered(session, refused, "s", {}, START, retry_at=None)
        later = START + timedelta(days=30)
        deliveries.mark_undelivered(session, waiting, "s", {}, START, retry_at=later)
    with session_scope(engine) as session:
        assert deliveries.prune_settled(session, older_than=START + timedelta(days=14)) == 2
        assert [d.id for d in deliveries.deliveries_of_lane(session, "lane")] == [waiting]
