"""After a crash: find applies whose worker is gone, and free what they held.

A worker that dies mid-apply (SIGKILL, a lost machine) leaves its plan `applying` and its
lease rows behind. Nothing about that needs an operator: the next plan, apply or pass on
any replica calls `recover_interrupted`, which marks such a plan `interrupted` (not
`stale`: nothing about what it read was wrong; not `failed`: no action said so), records
why, gives the dead worker's leases back and says so on each lane's status. The next plan
then starts from what is really there; a create whose answer was lost is offered back by
the kind as a reclaim instead of blocking the lane, and a run (a deploy) it had asked for is
handed to the kind as unfinished, to await rather than ask for a second time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from reconciler.core.inventory import UnfinishedCreate, UnfinishedRun
from reconciler.core.plans import Effect
from reconciler.errors import LeaseHeld, LeaseNotFound
from reconciler.records import audit, leases, plan_store, status
from reconciler.records.audit import AuditRecord
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.leases import LaneLease
from reconciler.records.plan_store import PlanStatus


@dataclass(frozen=True)
class InterruptedApply:
    plan_id: str
    lanes: tuple[str, ...]
    holder: str


def describe_holder(lease: LaneLease) -> str:
    where = f"pid {lease.pid} on {lease.host}" if lease.pid is not None else "unknown process"
    return f"{lease.holder} ({where})"


def recover_interrupted(engine: Engine, actor: str, now: datetime) -> list[InterruptedApply]:
    """Mark every `applying` plan whose worker is gone as interrupted; release its leases.

    A plan is live while any of its lanes is leased for it by a holder that still shows signs
    of life (apply takes its leases before it claims the plan, so a plan in `applying` with
    no live lease has no worker).
    """
    applying = plan_store.with_status(engine, PlanStatus.applying)
    if not applying:
        return []
    held_for: dict[str, list[LaneLease]] = {}
    for lease in leases.all_leases(engine):
        if lease.plan_id is not None:
            held_for.setdefault(lease.plan_id, []).append(lease)
    found = []
    for plan_id, lanes in applying:
        held = held_for.get(plan_id, [])
        if any(not leases.holder_gone(lease, now) for lease in held):
            continue
        found.append(_interrupt(engine, actor, plan_id, lanes, held, now))
    return found


def _interrupt(
    engine: Engine,
    actor: str,
    plan_id: str,
    lanes: list[str],
    held: list[LaneLease],
    now: datetime,
) -> InterruptedApply:
    holder = describe_holder(held[0]) if held else "a worker that left no lease"
    if not plan_store.move_status(engine, plan_id, PlanStatus.applying, PlanStatus.interrupted):
        return InterruptedApply(plan_id, tuple(lanes), holder)  # another replica got there
    for lease in held:
        leases.release(engine, lease.lane, lease.holder)
    message = (
        f"apply of {plan_id} was interrupted: its worker {holder} is gone; "
        "the next plan continues from what exists"
    )
    audit.record(
        engine,
        event=AuditEvent.apply_interrupted,
        actor=actor,
        plan_id=plan_id,
        data={"holder": holder, "lanes": lanes},
        at=now,
    )
    status.record_all(
        engine,
        [
            status.StatusUpdate(lane, status.stalled(status.Reason.interrupted, message))
            for lane in lanes
        ],
        now=now,
    )
    return InterruptedApply(plan_id, tuple(lanes), holder)


def release_lease(
    engine: Engine, actor: str, lane: str, now: datetime, *, force: bool
) -> LaneLease:
    """An operator gives a lane's lease back. A live holder's lease only with `force`: its
    heartbeat then finds the lease gone and that worker stops before its next action."""
    lease = leases.current(engine, lane)
    if lease is None:
        raise LeaseNotFound(lane)
    alive = not leases.holder_gone(lease, now)
    if alive and not force:
        raise LeaseHeld(lane, describe_holder(lease))
    if leases.release(engine, lane, lease.holder):
        audit.record(
            engine,
            event=AuditEvent.lease_released,
            actor=actor,
            lane=lane,
            plan_id=lease.plan_id,
            data={"holder": describe_holder(lease), "holder_alive": alive},
            at=now,
        )
    recover_interrupted(engine, actor, now)
    return lease


def gone_holders(engine: Engine, lanes: list[str], now: datetime) -> dict[str, str]:
    """Lanes that say they are being applied although no live worker holds them, each with
    what to say instead (read-only: the next plan, apply or pass does the recovery)."""
    held = {lease.lane: lease for lease in leases.all_leases(engine)}
    gone = {}
    for lane in lanes:
        lease = held.get(lane)
        if lease is None:
            gone[lane] = "holder gone: the apply stopped without finishing; the next plan resumes"
        elif leases.holder_gone(lease, now):
            gone[lane] = f"holder gone: {describe_holder(lease)}; the next plan resumes"
    return gone


def shown_statuses(engine: Engine, now: datetime) -> list[status.LaneStatusRow]:
    """Every lane's status row as an operator should see it: a lane whose applier is gone
    shows Stalled (Interrupted), not Reconciling (read-only: nothing is written)."""
    rows = status.all_statuses(engine)
    applying = [r.lane for r in rows if _reconciling_reason(r) == str(status.Reason.applying)]
    for lane, message in gone_holders(engine, applying, now).items():
        row = next(r for r in rows if r.lane == lane)
        row.conditions = status.conditions_of(
            status.stalled(status.Reason.interrupted, message), now
        )
    return rows


def _reconciling_reason(row: status.LaneStatusRow) -> str | None:
    return next((c["reason"] for c in row.conditions if c["type"] == "Reconciling"), None)


def unfinished_creates(engine: Engine) -> tuple[UnfinishedCreate, ...]:
    """Creates that interrupted applies announced and never reported on."""
    return tuple(UnfinishedCreate(*_named(row)) for row in _unanswered(engine, Effect.create))


def unfinished_runs(engine: Engine) -> tuple[UnfinishedRun, ...]:
    """Runs (deploys) that interrupted applies announced and nobody reported on since: not
    that apply, nor a later result of the same operation on the same target in any plan."""
    return tuple(
        UnfinishedRun(*_named(row), changes=tuple(row.data.get("changes") or ()))
        for row in _unanswered(engine, Effect.run, nor_since=True)
    )


def _unanswered(engine: Engine, effect: Effect, *, nor_since: bool = False) -> list[AuditRecord]:
    """The intents of `effect` in interrupted plans that no result answers (`nor_since`: nor
    a later result of the same operation on the same target, in any plan)."""
    with session_scope(engine) as session:
        return [
            row
            for row in _unfinished_intents(session, _interrupted(engine), effect)
            if not (nor_since and _reported_since(session, row))
        ]


def _named(row: AuditRecord) -> tuple[str, str, str, datetime, str, str]:
    """What an intent names, in the order the unfinished records take it: lane, operation,
    target, when, plan, action."""
    data = row.data
    return (
        str(row.lane),
        str(data["op"]),
        str(data["target"]),
        row.at,
        str(row.plan_id),
        str(row.action_id),
    )


def _interrupted(engine: Engine) -> list[str]:
    return [plan_id for plan_id, _ in plan_store.with_status(engine, PlanStatus.interrupted)]


def _unfinished_intents(
    session: Session, plan_ids: list[str], effect: Effect
) -> Iterator[AuditRecord]:
    """The intents of `effect` in these plans that no result or skip of theirs answers."""
    for plan_id in plan_ids:
        intents: dict[str, AuditRecord] = {}
        for row in audit.iter_records(session, plan_id=plan_id):
            if row.event == AuditEvent.action_intent and row.data.get("effect") == effect:
                intents[str(row.action_id)] = row
            elif row.event in (AuditEvent.action_result, AuditEvent.action_skipped):
                intents.pop(str(row.action_id), None)
        yield from intents.values()


def _reported_since(session: Session, intent: AuditRecord) -> bool:
    """Whether a later apply recorded a result of the same operation on the same target."""
    later = audit.iter_records(
        session, lane=intent.lane, event=AuditEvent.action_result, since_seq=intent.seq
    )
    return any(
        row.data.get("op") == intent.data.get("op")
        and row.data.get("target") == intent.data.get("target")
        for row in later
    )
