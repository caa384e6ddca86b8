"""At most one in-flight mutation per provider target, across replicas (Invariant 10).

A lane's own objects are guarded by its lane lease, which `apply_plan` takes. Objects that
several lanes share (a product's project, proposed once per target by the planner) are not:
two replicas applying two lanes of one product could both create its project. So before an
unattended apply, the worker also leases each shared target the plan changes, under a key
no lane can have (`target:` + the action's target). A worker that cannot take one gives the
lanes back for a short while; when it comes back, the other worker's change has made its
plan stale, and the new plan no longer proposes it.
"""

from __future__ import annotations

import random
import secrets

import anyio

from reconciler.core.apply import ApplyResult, ApplyStatus, LaneDone, apply_plan
from reconciler.core.plans import Blocker, BlockerType, Plan, Trigger
from reconciler.errors import LaneBusy
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import audit, leases, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.runtime import Runtime

TARGET_PREFIX = "target:"


def shared_targets(registry: LaneRegistry, plan: Plan) -> list[str]:
    """Lease keys of the shared targets `plan` changes (pure)."""
    keys = set()
    for action in plan.actions:
        if not registry.knows(action.lane):
            continue
        spec = registry.kind_of(action.lane).ops.get(action.op)
        if spec is not None and spec.shared:
            keys.add(TARGET_PREFIX + action.target)
    return sorted(keys)


async def apply_guarded(
    runtime: Runtime,
    registry: LaneRegistry,
    plan_id: str,
    trigger: Trigger,
    on_lane: LaneDone | None = None,
) -> ApplyResult:
    """`apply_plan`, holding the leases of the shared targets the plan changes."""
    plan, _ = await in_thread(plan_store.load, runtime.database, plan_id)
    keys = shared_targets(registry, plan)
    if not keys:
        return await apply_plan(runtime, plan_id, trigger=trigger, on_lane=on_lane)
    holder = leases.Holder(label=f"{runtime.actor}:targets:{plan_id}:{secrets.token_hex(3)}")
    ttl = runtime.settings.lease_ttl_seconds
    try:
        held = await _take_waiting(runtime, keys, holder, patience=2 * ttl)
    except LaneBusy as busy:
        return await _refuse_busy(runtime, plan, busy)
    held.start_heartbeat()
    try:
        return await apply_plan(runtime, plan_id, trigger=trigger, on_lane=on_lane)
    finally:
        with anyio.CancelScope(shield=True):  # give the targets back even when cancelled
            await in_thread(held.stop_heartbeat)
            for key in held.lanes:
                await in_thread(leases.release, runtime.database, key, holder)


async def _take_waiting(
    runtime: Runtime, keys: list[str], holder: leases.Holder, *, patience: float
) -> leases.HeldLanes:
    """Take every key, waiting a while for another worker's change to a shared target to
    end (it is short next to planning the lanes again). Raises LaneBusy after `patience`."""
    deadline = anyio.current_time() + patience
    ttl = runtime.settings.lease_ttl_seconds
    while True:
        try:
            return await in_thread(
                leases.take_all, runtime.database, keys, holder, ttl, clock=runtime.now
            )
        except LaneBusy:
            if anyio.current_time() >= deadline:
                raise
        await anyio.sleep(random.uniform(0.05, 0.25))  # noqa: S311 -- spacing, not security


async def _refuse_busy(runtime: Runtime, plan: Plan, busy: LaneBusy) -> ApplyResult:
    refusal = Blocker(
        type=BlockerType.target_busy,
        lane=None,
        message=(
            f"shared target {busy.lane.removeprefix(TARGET_PREFIX)} is being changed by "
            f"{busy.holder}; tried again shortly"
        ),
    )
    await in_thread(
        audit.record,
        runtime.database,
        event=AuditEvent.apply_refused,
        actor=runtime.actor,
        plan_id=plan.plan_id,
        data={"blocker": refusal.type, "message": refusal.message},
        at=runtime.now(),
    )
    return ApplyResult(plan_id=plan.plan_id, status=ApplyStatus.refused, refusal=refusal)
