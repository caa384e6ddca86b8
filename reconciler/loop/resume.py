"""The resume pass: at start-up (and each timer tick), pick up work a dead worker left.

`core/recovery.py` already marks a dead worker's `applying` plan interrupted and frees its
lane leases. This adds the loop's own records: lapsed queue claims are cleared, and a
`running` operation whose lane no worker holds goes back to `pending` (it was only being
planned: planning again is safe) or, if it was applying, ends `failed` with a clear error
(its plan is interrupted; the caller asks again, and that plan starts from what exists, so
nothing is ever applied twice blindly). An operation parked on a long wait (phase
`waiting`) is no worker's and stays as it is; one whose worker died while it looked at that
wait again is parked again, not failed: the wait it started (a deploy asked for) goes on, and
the lane's next look awaits it, never asks for it again. Every lane with an open operation
is queued (one still queued keeps its row, and with it any backoff or due time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.core.recovery import recover_interrupted
from reconciler.records import operations, work_queue
from reconciler.records.database import session_scope
from reconciler.records.operations import OperationPhase, OperationStatus, RequestOutcome
from reconciler.records.work_queue import WorkPriority
from reconciler.runtime import Runtime

INTERRUPTED_APPLY = (
    "the worker applying plan {plan} stopped before it finished (it died or shut down); "
    "the plan is interrupted and nothing of it runs again: request the lane again to plan "
    "from what exists now"
)


@dataclass
class Resumed:
    interrupted_plans: list[str] = field(default_factory=list)
    lapsed_claims: list[str] = field(default_factory=list)
    operations_requeued: list[str] = field(default_factory=list)
    operations_failed: list[str] = field(default_factory=list)
    operations_parked: list[str] = field(default_factory=list)


def resume(runtime: Runtime) -> Resumed:
    done = Resumed()
    done.interrupted_plans = [
        i.plan_id for i in recover_interrupted(runtime.database, runtime.actor, runtime.now())
    ]
    now = runtime.now()
    with session_scope(runtime.database, write_lock=True) as session:
        done.lapsed_claims = work_queue.release_lapsed(session, now)
        stranded = operations.stranded(session, work_queue.claimed_lanes(session, now))
        parked = {op.id for op in stranded if operations.was_parked(op)}
        operations.park_again(session, sorted(parked), now)
        done.operations_parked = [op.id for op in stranded if op.id in parked]
        for op in stranded:
            if op.id in parked:
                continue
            if op.phase == OperationPhase.applying.value and op.merged_into not in parked:
                error = INTERRUPTED_APPLY.format(plan=op.plan_id)
                operations.advance(
                    session,
                    [op.id],
                    now,
                    status=OperationStatus.failed,
                    phase=OperationPhase.done,
                    result={"outcome": RequestOutcome.interrupted, "plan_id": op.plan_id},
                    error=error,
                )
                done.operations_failed.append(op.id)
            else:
                operations.requeue(session, [op.id], now)
                done.operations_requeued.append(op.id)
        # A lane still queued keeps its row as it is (a backoff included: a batch that
        # crashed must not come straight back); one that lost its row is queued again.
        queued = {row.lane for row in work_queue.queued(session)}
        lost = [lane for lane in operations.lanes_with_open(session) if lane not in queued]
        work_queue.enqueue(session, lost, WorkPriority.workflow, "resumed", now)
    return done
