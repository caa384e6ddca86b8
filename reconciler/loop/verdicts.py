"""What a worker concluded about one lane, and what the work queue does with it.

A verdict is the lane's result (as a scheduled pass reports it) plus whether the lane failed
and how: no failure finishes the lane's queue row, a temporary failure backs off, a
permanent one gives up until something changes, and a kind's "not yet" waits until the time
the kind named without counting as a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from reconciler.loop.backoff import FailureClass, retry_delay
from reconciler.loop.passes import LaneResult
from reconciler.records import work_queue
from reconciler.records.work_queue import ClaimedWork
from reconciler.settings import Settings


@dataclass(frozen=True)
class LaneVerdict:
    result: LaneResult
    failure: FailureClass | None = None
    not_before: datetime | None = None  # a kind's "not yet": the time it named

    @property
    def lane(self) -> str:
        return self.result.lane


def finish(
    session: Session,
    worker: str,
    claimed: Sequence[ClaimedWork],
    verdicts: Sequence[LaneVerdict],
    settings: Settings,
    *,
    now: datetime,
    draw: Callable[[float, float], float],
) -> set[str]:
    """Finish every claimed lane's queue row by its verdict, in the caller's transaction.
    Returns the lanes with a verdict whose rows stay queued: put back for later, or asked
    for again while they were worked."""
    by_lane = {v.lane: v for v in verdicts}
    later: dict[str, datetime] = {}
    kept: set[str] = set()
    done: list[str] = []
    for work in claimed:
        verdict = by_lane.get(work.lane)
        if verdict is None:  # not worked (the batch stopped early): due again at once
            work_queue.release(session, worker, [work.lane])
            continue
        error = f"{verdict.result.outcome}: {verdict.result.detail}"
        if verdict.not_before is not None:
            later[work.lane] = verdict.not_before
            work_queue.finish_retry(
                session,
                worker,
                work.lane,
                retry_at=verdict.not_before,
                error=error,
                count_attempt=verdict.failure is FailureClass.temporary,
            )
        elif verdict.failure is FailureClass.temporary:
            delay = retry_delay(
                work.attempts + 1,
                base=settings.loop_backoff_base_seconds,
                cap=settings.loop_backoff_cap_seconds,
                draw=draw,
            )
            later[work.lane] = now + timedelta(seconds=delay)
            work_queue.finish_retry(
                session, worker, work.lane, retry_at=later[work.lane], error=error
            )
        elif verdict.failure is FailureClass.permanent:
            kept.update(work_queue.finish_given_up(session, worker, work.lane))
        else:
            done.append(work.lane)
    kept.update(work_queue.finish_done_all(session, worker, done))
    return kept | set(later)
