"""Apply a stored plan: gate it, check it is still true, execute in order, audit each step.

Order of business (DESIGN invariants 1, 2, 5, 6, 8, 10): the plan must be pending and
unexpired, unblocked (a blast-radius block lifts only with --allow-destroy N), opted into,
and for the current desired revision; then lanes are leased, credentials preflighted, and
everything the plan read is read again. Only then do side effects start, each preceded by
a durable intent record and followed by its result; the first failure stops the apply.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.core.plans import Action, Blocker, BlockerType, Plan, Risk
from reconciler.fleet import load_fleet
from reconciler.kinds.base import ActionExecutor, ActionFailed
from reconciler.kinds.registry import LaneRegistry, lane_kinds
from reconciler.records import audit, leases, plan_store, status
from reconciler.records.audit import AuditEvent
from reconciler.records.columns import utcnow
from reconciler.runtime import Runtime
from reconciler.secrets import redact

log = logging.getLogger("setpoint.apply")
LEASE_SECONDS = 1800.0


@dataclass(frozen=True)
class ActionReport:
    action_id: str
    op: str
    lane: str
    result: Literal["ok", "failed", "not_run"]
    message: str


@dataclass
class ApplyResult:
    plan_id: str
    status: Literal["applied", "failed", "refused"]
    refusal: Blocker | None = None
    actions: list[ActionReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "applied"


async def apply_plan(
    runtime: Runtime,
    plan_id: str,
    *,
    allow_destroy: int = 0,
    auto_safe: bool = False,
) -> ApplyResult:
    """Apply `plan_id`. `auto_safe` is a scheduled pass's opt-in: lane policy must allow it."""
    plan, plan_status = plan_store.load(runtime.engine, plan_id)
    fleet = load_fleet(runtime.engine)
    registry = lane_kinds(runtime, fleet)
    refusal = _gate(
        registry,
        plan,
        plan_status,
        fleet.revision,
        allow_destroy=allow_destroy,
        auto_safe=auto_safe,
    )
    if refusal is not None:
        return _refuse(runtime, plan, refusal)
    if not plan_store.claim_for_apply(runtime.engine, plan.plan_id):
        return _refuse(
            runtime,
            plan,
            Blocker(
                type=BlockerType.stale_plan,
                lane=None,
                message="another apply of this plan is already running or has finished",
            ),
            keep_status=True,
        )
    holder = f"{runtime.actor}:{plan.plan_id}"
    try:
        with leases.hold(runtime.engine, plan.lanes, holder, ttl_seconds=LEASE_SECONDS) as held:
            return await _apply_leased(runtime, registry, plan, held)
    except leases.LaneBusy as busy:
        plan_store.set_status(runtime.engine, plan.plan_id, "pending")
        return _refuse(
            runtime,
            plan,
            Blocker(
                type=BlockerType.action_not_allowed,
                lane=busy.lane,
                message=f"lane {busy.lane} is being reconciled by {busy.holder}; try again later",
            ),
            keep_status=True,
        )


def _gate(
    registry: LaneRegistry,
    plan: Plan,
    plan_status: str,
    desired_revision: str,
    *,
    allow_destroy: int,
    auto_safe: bool,
) -> Blocker | None:
    if plan_status != "pending":
        return Blocker(
            type=BlockerType.stale_plan,
            lane=None,
            message=f"plan {plan.plan_id} is {plan_status}; compute a new plan",
        )
    if utcnow() >= plan.expires_at:
        return Blocker(
            type=BlockerType.stale_plan,
            lane=None,
            message=f"plan {plan.plan_id} expired at {plan.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        )
    for blocker in plan.blockers:
        if blocker.type is BlockerType.blast_radius_exceeded and allow_destroy >= plan.deletions:
            continue
        return blocker
    if plan.deletions and auto_safe:
        return Blocker(
            type=BlockerType.action_not_allowed,
            lane=None,
            message="a scheduled pass never deletes; an operator must apply this plan",
        )
    if desired_revision != plan.desired_revision:
        return Blocker(
            type=BlockerType.stale_plan,
            lane=None,
            message=(
                f"desired state changed since the plan (revision {plan.desired_revision} -> "
                f"{desired_revision}); compute a new plan"
            ),
        )
    if auto_safe:
        return _auto_safe_refusal(registry, plan)
    return None


def _auto_safe_refusal(registry: LaneRegistry, plan: Plan) -> Blocker | None:
    for action in plan.actions:
        if registry.apply_policy(action.lane) != "auto-safe":
            return Blocker(
                type=BlockerType.action_not_allowed,
                lane=action.lane,
                message=f"lane {action.lane} has apply policy manual: an operator must apply",
            )
        if action.risk is not Risk.safe:
            return Blocker(
                type=BlockerType.action_not_allowed,
                lane=action.lane,
                message=f"{action.id} {action.op.value} is {action.risk.value}; auto-safe "
                "applies only safe actions",
            )
    return None


def _refuse(
    runtime: Runtime, plan: Plan, blocker: Blocker, *, keep_status: bool = False
) -> ApplyResult:
    _audit(
        runtime,
        plan,
        AuditEvent.apply_refused,
        {"blocker": blocker.type.value, "message": blocker.message, **blocker.details},
        lane=blocker.lane,
    )
    if blocker.type is BlockerType.stale_plan and not keep_status:
        plan_store.set_status(runtime.engine, plan.plan_id, "stale")
    return ApplyResult(plan_id=plan.plan_id, status="refused", refusal=blocker)


async def _apply_leased(
    runtime: Runtime, registry: LaneRegistry, plan: Plan, held: leases.HeldLanes
) -> ApplyResult:
    failures = await registry.preflight(plan.lanes)
    if failures:
        plan_store.set_status(runtime.engine, plan.plan_id, "pending")
        return _refuse(
            runtime,
            plan,
            Blocker(type=BlockerType.preflight_failed, lane=None, message="; ".join(failures)),
            keep_status=True,
        )
    changed = await _changed_since_plan(registry, plan)
    if changed:
        return _refuse(
            runtime,
            plan,
            Blocker(
                type=BlockerType.stale_plan,
                lane=None,
                message=(
                    "what the plan read has changed since it was computed: "
                    f"{', '.join(changed)}; compute a new plan"
                ),
                details={"changed": changed},
            ),
        )
    _audit(
        runtime,
        plan,
        AuditEvent.apply_started,
        {"digest": plan.digest, "actions": len(plan.actions), "lanes": plan.lanes},
    )
    for lane in plan.lanes:
        status.record(runtime.engine, lane, status.reconciling(f"applying {plan.plan_id}"))
    executors = registry.executors(runtime)
    reports: list[ActionReport] = []
    stopped: str | None = None  # why the remaining actions do not run
    renewed_at = time.monotonic()
    for index, action in enumerate(plan.actions, start=1):
        runtime.progress(f"[{index}/{len(plan.actions)}] {action.op.value} {action.target}")
        if time.monotonic() - renewed_at > LEASE_SECONDS / 3:
            try:
                held.renew()  # a long apply must not outlive its leases unnoticed
            except leases.LeaseLost as lost:
                stopped = str(lost)
                break
            renewed_at = time.monotonic()
        report = await _run_action(runtime, plan, executors[action.lane], action)
        reports.append(report)
        if report.result == "failed":
            stopped = f"{action.id} failed"
            break
    if stopped is not None:
        for action in plan.actions[len(reports) :]:
            reports.append(
                ActionReport(
                    action.id, action.op.value, action.lane, "not_run", f"not run: {stopped}"
                )
            )
            _audit(
                runtime,
                plan,
                AuditEvent.action_skipped,
                {"op": action.op.value, "target": action.target, "why": stopped},
                action=action,
            )
    outcome: Literal["applied", "failed"] = "failed" if stopped else "applied"
    plan_store.set_status(runtime.engine, plan.plan_id, outcome)
    _record_lane_results(runtime, registry, plan, reports)
    _audit(
        runtime,
        plan,
        AuditEvent.apply_finished,
        {
            "status": outcome,
            "ok": [r.action_id for r in reports if r.result == "ok"],
            "failed": [r.action_id for r in reports if r.result == "failed"],
            "not_run": [r.action_id for r in reports if r.result == "not_run"],
        },
    )
    return ApplyResult(plan_id=plan.plan_id, status=outcome, actions=reports)


async def _run_action(
    runtime: Runtime, plan: Plan, executor: ActionExecutor, action: Action
) -> ActionReport:
    _audit(
        runtime,
        plan,
        AuditEvent.action_intent,
        {
            "op": action.op.value,
            "target": action.target,
            "risk": action.risk.value,
            "changes": [c.model_dump(mode="json") for c in action.changes],
        },
        action=action,
    )
    data: dict[str, Any] = {"op": action.op.value, "target": action.target}
    try:
        outcome = await executor.execute(action)
    except ActionFailed as exc:
        message = redact(str(exc))
        result = ActionReport(action.id, action.op.value, action.lane, "failed", message)
    except Exception as exc:  # an unexpected bug must still leave a trail, then surface
        message = redact(f"unexpected {type(exc).__name__}: {exc}")
        log.exception("action %s failed unexpectedly", action.id)
        result = ActionReport(action.id, action.op.value, action.lane, "failed", message)
    else:
        data["outputs"] = outcome.outputs
        result = ActionReport(action.id, action.op.value, action.lane, "ok", outcome.message)
    _audit(
        runtime,
        plan,
        AuditEvent.action_result,
        {**data, "result": result.result, "message": result.message},
        action=action,
    )
    return result


async def _changed_since_plan(registry: LaneRegistry, plan: Plan) -> list[str]:
    observation = await registry.observe(plan.lanes)
    if observation.problems:
        return [f"observation incomplete ({p.reason})" for p in observation.problems]
    changed = []
    for ref, fingerprint in plan.fingerprints.items():
        if observation.fingerprints.get(ref) != fingerprint:
            changed.append(ref)
    return changed


def _record_lane_results(
    runtime: Runtime, registry: LaneRegistry, plan: Plan, reports: list[ActionReport]
) -> None:
    for lane in plan.lanes:
        lane_reports = [r for r in reports if r.lane == lane]
        failed = [r for r in lane_reports if r.result == "failed"]
        skipped = [r for r in lane_reports if r.result == "not_run"]
        generation = registry.generation(lane)
        if generation is None and not failed and not skipped:
            status.forget(runtime.engine, lane)  # no longer desired, and now gone
            continue
        if failed:
            condition = status.stalled("ApplyFailed", f"{failed[0].action_id}: {failed[0].message}")
        elif skipped:
            condition = status.stalled("ApplyIncomplete", f"{len(skipped)} action(s) not run")
        else:
            condition = status.converged(f"plan {plan.plan_id} applied")
        status.record(
            runtime.engine,
            lane,
            condition,
            observed_generation=generation if not failed and not skipped else None,
            last_applied_plan=plan.plan_id if not failed and not skipped else None,
        )


def _audit(
    runtime: Runtime,
    plan: Plan,
    event: AuditEvent,
    data: dict[str, Any],
    *,
    action: Action | None = None,
    lane: str | None = None,
) -> None:
    """One audit record about this plan (and action), committed before returning."""
    audit.record(
        runtime.engine,
        event=event,
        actor=runtime.actor,
        lane=action.lane if action else lane,
        plan_id=plan.plan_id,
        action_id=action.id if action else None,
        data=data,
    )
