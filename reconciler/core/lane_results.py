"""What an apply writes to its lanes' status: Reconciling when it starts, and each lane's
result when its actions are done (converged, waiting with its retry time, or stalled with
the reason its kind gave), in one transaction for the lanes finished together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reconciler.core.outcomes import ActionResult
from reconciler.core.plans import Plan
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import status
from reconciler.runtime import Runtime

if TYPE_CHECKING:
    from reconciler.core.apply_run import ActionReport


def mark_reconciling(runtime: Runtime, plan: Plan) -> None:
    message = f"applying {plan.plan_id}"
    updates = [status.StatusUpdate(lane, status.reconciling(message)) for lane in plan.lanes]
    status.record_all(runtime.database, updates, now=runtime.now())


def record_lane_results(
    runtime: Runtime,
    registry: LaneRegistry,
    plan: Plan,
    reports: Sequence[ActionReport],
    recorded: set[str] | None = None,
) -> None:
    """Every lane's status after the apply (but those `recorded` already), in one
    transaction."""
    by_lane: dict[str, list[ActionReport]] = {}
    for report in reports:
        by_lane.setdefault(report.lane, []).append(report)
    updates, gone = [], []
    for lane in plan.lanes:
        if recorded and lane in recorded:
            continue
        lane_reports = by_lane.get(lane, [])
        update = lane_result(registry, plan, lane, lane_reports, runtime.now())
        if update is None:
            gone.append(lane)  # no longer desired, and now gone
        else:
            updates.append(update)
    status.record_all(runtime.database, updates, forget=gone, now=runtime.now())


def lane_result(
    registry: LaneRegistry,
    plan: Plan,
    lane: str,
    lane_reports: list[ActionReport],
    now: datetime,
) -> status.StatusUpdate | None:
    by_result: dict[ActionResult, list[ActionReport]] = {}
    for report in lane_reports:
        by_result.setdefault(report.result, []).append(report)
    generation = registry.generation(lane)
    if set(by_result) <= {ActionResult.ok} and generation is None:
        return None
    # The plan that last changed the lane: this one if any of its actions here succeeded.
    changed = plan.plan_id if ActionResult.ok in by_result else None
    if ActionResult.failed in by_result:
        first = by_result[ActionResult.failed][0]
        condition = status.stalled(
            status.Reason.apply_failed, f"{first.action_id} of {plan.plan_id}: {first.message}"
        )
        return status.StatusUpdate(lane, condition, last_applied_plan=changed)
    if ActionResult.retry in by_result:
        first = by_result[ActionResult.retry][0]
        retry_at = now + timedelta(seconds=first.retry_after or 0.0)
        message = f"{first.action_id}: {first.message} (next try {retry_at:%H:%M:%S} UTC)"
        if first.stalled:
            condition = status.stalled(first.stalled_as or status.Reason.degraded, message)
            return status.StatusUpdate(
                lane, condition, last_applied_plan=changed, retry_at=retry_at
            )
        return status.StatusUpdate(
            lane, status.waiting(message), last_applied_plan=changed, retry_at=retry_at
        )
    if ActionResult.not_run in by_result:
        skipped = len(by_result[ActionResult.not_run])
        condition = status.stalled(
            status.Reason.apply_incomplete, f"{skipped} action(s) of {plan.plan_id} not run"
        )
        return status.StatusUpdate(lane, condition, last_applied_plan=changed)
    if not lane_reports:  # the plan had nothing for this lane: it did not change it
        return status.StatusUpdate(lane, status.converged(), observed_generation=generation)
    # The lane's last action says how it ended (a deploy: verified by its checks, or not).
    last = lane_reports[-1].message
    return status.StatusUpdate(
        lane,
        status.converged(f"plan {plan.plan_id} applied" + (f": {last}" if last else "")),
        observed_generation=generation,
        last_applied_plan=plan.plan_id,
    )
