"""`setpoint forget LANE`: drop a lane's ownership records once its objects are gone.

After Dokploy lost objects (a reinstall, a restore from an old backup), every plan is
rightly blocked: Setpoint owns objects it cannot see, and an empty listing is never read
as "nothing exists". An operator who knows the objects are gone tells Setpoint to forget
the lane. Fail-closed: the lane is leased for the duration (nothing applies to it
meanwhile), the kind's provider must pass preflight (so a wrong URL's 404 cannot pass for
"not found"), and every owned object must be read by id and answered "not found"; else
nothing is dropped and the refusal says why, in one line. The records, the lane's status
and the audit record are written in one transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from reconciler.core.inventory import Owned
from reconciler.core.planning import PassContext, load_context
from reconciler.errors import ForgetRefused, LaneBusy, UnknownLane
from reconciler.kinds.base import ForgettingKind, GoneCheck, preflight_failure
from reconciler.records import audit, leases, ownership, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.runtime import Runtime


@dataclass(frozen=True)
class ForgottenLane:
    lane: str
    objects: tuple[str, ...]  # "provider object_type object_id (name)", for people


def describe(owned: Owned) -> str:
    return f"{owned.provider} {owned.object_type} {owned.object_id} ({owned.name})"


async def forget_lane(runtime: Runtime, name: str) -> ForgottenLane:
    """Drop `name`'s ownership records once its objects are confirmed gone; ForgetRefused
    (nothing changed) otherwise."""
    context = await load_context(runtime)
    lane, kind = _forgettable(context, name)
    holder = leases.Holder(label=f"{runtime.actor}:forget:{secrets.token_hex(3)}")
    try:
        async with leases.holding(
            runtime.database,
            [lane],
            holder,
            ttl_seconds=runtime.settings.lease_ttl_seconds,
            clock=runtime.now,
        ):
            owned = (await load_context(runtime)).owned.for_lane(lane)  # as of the lease
            await _confirm_all_gone(kind, lane, owned)
            await in_thread(_drop_records, runtime, lane, owned, holder)
    except LaneBusy as exc:
        raise ForgetRefused(f"refusing to forget {lane}: {exc}") from None
    return ForgottenLane(lane, tuple(describe(o) for o in owned))


def _forgettable(context: PassContext, name: str) -> tuple[str, ForgettingKind]:
    try:
        [lane] = context.registry.resolve([name])
    except UnknownLane as exc:
        raise ForgetRefused(str(exc)) from None
    if not context.owned.for_lane(lane):
        raise ForgetRefused(f"Setpoint owns nothing in lane {lane}: there is nothing to forget")
    kind = context.registry.kind_of(lane)
    if not isinstance(kind, ForgettingKind):
        raise ForgetRefused(f"lanes of kind {kind.name} cannot confirm their objects are gone")
    return lane, kind


async def _confirm_all_gone(kind: ForgettingKind, lane: str, owned: list[Owned]) -> None:
    if not owned:
        raise ForgetRefused(f"Setpoint owns nothing in lane {lane}: there is nothing to forget")
    problem = preflight_failure(await kind.preflight())
    if problem is not None:
        raise ForgetRefused(
            f"refusing to forget {lane}: cannot confirm anything: {problem.message}"
        )
    checks = await kind.confirm_gone(owned)
    standing = _not_gone(checks, owned)
    if standing:
        more = f" (and {len(standing) - 1} more)" if len(standing) > 1 else ""
        raise ForgetRefused(f"refusing to forget {lane}: {standing[0]}{more}; nothing forgotten")


def _not_gone(checks: list[GoneCheck], owned: list[Owned]) -> list[str]:
    """Why each owned object is not confirmed gone; one the kind did not answer for is not."""
    by_ref = {check.ref: check for check in checks}
    reasons = []
    for item in owned:
        check = by_ref.get(item.ref)
        if check is None:
            reasons.append(f"{describe(item)} was not checked")
        elif not check.gone:
            reasons.append(check.reason or f"{describe(item)} is not confirmed gone")
    return reasons


def _drop_records(runtime: Runtime, lane: str, owned: list[Owned], holder: leases.Holder) -> None:
    now = runtime.now()
    with audit.transaction(runtime.database) as session:
        leases.confirm(session, lane, holder, now)
        for item in owned:
            ownership.record_release(session, item.ref)
        status.drop(session, lane)
        audit.append(
            session,
            event=AuditEvent.lane_forgotten,
            actor=runtime.actor,
            lane=lane,
            data={
                "objects": [describe(o) for o in owned],
                "confirmed": "each object read by id, and not found",
            },
            at=now,
        )
