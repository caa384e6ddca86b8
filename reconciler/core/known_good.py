"""Known-good states and rollback: what a lane ran when it was healthy, and bringing it back.

A lane's state is remembered when a survey finds it converged (no action, no blocker) and
its kind says its newest deploy passed its health checks (`RestoringKind.good_state`), once
per desired generation. A rollback writes a remembered state back as a new desired
generation (audited with who asked, why, and for a scheduled pass the failed health
verdict that caused it) and changes nothing outside: the plan that follows is an ordinary
plan, applied only with opt-in (an operator, or the lane's own `apply` policy in a pass).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from desired_state.document import Document
from desired_state.issues import InvalidDesiredState
from reconciler.core.planning import PassContext, Survey, load_context
from reconciler.errors import RollbackRefused
from reconciler.kinds.base import RestoringKind
from reconciler.kinds.registry import LaneRegistry
from reconciler.records import audit, known_good
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread, session_scope
from reconciler.records.desired import get_object, store_revision
from reconciler.runtime import Runtime


def restoring_kind(registry: LaneRegistry, lane: str) -> RestoringKind | None:
    kind = registry.kind_of(lane)
    return kind if isinstance(kind, RestoringKind) else None


def remember_good(
    runtime: Runtime, context: PassContext, seen: Survey, lanes: Sequence[str] | None = None
) -> int:
    """Remember the converged, healthy lanes of `seen` (or of `lanes`, all surveyed) at
    their desired generations. Returns how many states were new. Blocking."""
    registry = context.registry
    now = datetime.fromtimestamp(runtime.clock(), UTC)
    found = []
    for lane in seen.lanes if lanes is None else lanes:
        diff = seen.diffs[lane]
        generation = registry.generation(lane)
        if generation is None or diff.actions or diff.blockers:
            continue  # before asking the kind: a protocol check per lane is not free
        kind = restoring_kind(registry, lane)
        if kind is None:
            continue
        if any(b.concerns(lane) for b in seen.blockers):
            continue
        state = kind.good_state(lane, seen.observation.of(kind.name))
        if state is not None:
            found.append(
                known_good.GoodStateRow(
                    lane=lane,
                    generation=generation,
                    running=state.running,
                    verdict=dict(state.verdict),
                    restore=dict(state.restore),
                    recorded_at=now,
                )
            )
    return known_good.remember(runtime.database, found)


@dataclass(frozen=True)
class RolledBack:
    lane: str
    generation: int  # the new desired generation that brings the lane back
    restored: known_good.GoodStateRow  # the known-good state written back


def choose_state(
    runtime: Runtime, registry: LaneRegistry, lane: str, to_generation: int | None
) -> tuple[known_good.GoodStateRow, Document]:
    """The state to bring `lane` back to, and the document that does: the generation named,
    or the newest known-good state older than the lane's generation whose document differs
    from the one stored now. Blocking."""
    kind = restoring_kind(registry, lane)
    generation = registry.generation(lane)
    if kind is None or generation is None:
        raise RollbackRefused(f"{lane} keeps no known-good state: it cannot be rolled back")
    states = known_good.history(runtime.database, lane)
    if to_generation is not None:
        states = [s for s in states if s.generation == to_generation]
        if not states:
            raise RollbackRefused(f"{lane} was never known good at generation {to_generation}")
    else:
        states = [s for s in states if s.generation < generation]
    for state in states:
        document = kind.restore(lane, state.restore)
        if document.spec_hash() != _stored_hash(runtime, document):
            return state, document
    if to_generation is not None:
        raise RollbackRefused(f"{lane} already asks for what it ran at generation {to_generation}")
    raise RollbackRefused(
        f"{lane} has no earlier known-good state that differs from generation {generation}"
    )


def _stored_hash(runtime: Runtime, document: Document) -> str | None:
    with session_scope(runtime.database) as session:
        row = get_object(session, document.kind, document.name)
        return row.spec_hash if row is not None else None


def write_rollback(
    runtime: Runtime,
    registry: LaneRegistry,
    lane: str,
    *,
    reason: str,
    to_generation: int | None = None,
    verdict: Mapping[str, Any] | None = None,
) -> RolledBack:
    """Store the desired document that brings `lane` back to a known-good state, and audit
    it with `reason` (and the failed `verdict` that caused it, for a scheduled pass).
    Changes nothing outside. Blocking."""
    state, document = choose_state(runtime, registry, lane, to_generation)
    source = f"rollback of {lane} to generation {state.generation}"
    data: dict[str, Any] = {
        "reason": reason,
        "from_generation": registry.generation(lane),
        "to_generation": state.generation,
        "running": state.running,
        "good_verdict": state.verdict,
    }
    if verdict is not None:
        data["failed_verdict"] = dict(verdict)
    try:
        # One transaction: the stored generation and its audit record exist together or not.
        now = runtime.now()
        with audit.transaction(runtime.database) as session:
            data["generation"] = generation = store_revision(session, document, source, now=now)
            entry = audit.AuditEntry(AuditEvent.lane_rolled_back, runtime.actor, lane, data=data)
            audit.append_many(session, [entry], at=now)
    except InvalidDesiredState as exc:
        raise RollbackRefused(
            f"{lane}: that state clashes with stored desired state: {exc.issues[0].message}"
        ) from None
    return RolledBack(lane, generation, state)


async def rollback(
    runtime: Runtime, lane: str, *, reason: str, to_generation: int | None = None
) -> RolledBack:
    """An operator's rollback of one lane (a key or an unambiguous name)."""
    context = await load_context(runtime)
    [key] = context.registry.resolve([lane])
    return await in_thread(
        write_rollback, runtime, context.registry, key, reason=reason, to_generation=to_generation
    )


def rollbacks_due(
    runtime: Runtime, context: PassContext, seen: Survey, lanes: Sequence[str]
) -> list[RolledBack]:
    """A scheduled pass's rollbacks: lanes whose newest deploy failed its health checks and
    whose policy says `onFailedHealth: rollback`, brought back to their last known-good
    state, audited as the pass with the failed verdict. A lane with no state to go back to
    is left as it is (its failing health is its status), and so is a generation a rollback
    wrote: a pass never walks further back through the history on its own. Blocking."""
    done = []
    registry = context.registry
    for lane in lanes:
        kind = restoring_kind(registry, lane)
        if kind is None or any(b.concerns(lane) for b in seen.blockers):
            continue
        verdict = kind.rollback_due(lane, seen.observation.of(kind.name))
        if verdict is None or _written_by_rollback(runtime, lane, registry.generation(lane)):
            continue
        reason = f"onFailedHealth: rollback: health check failed ({verdict.get('reason')})"
        try:
            done.append(write_rollback(runtime, registry, lane, reason=reason, verdict=verdict))
        except RollbackRefused:
            continue
    return done


def _written_by_rollback(runtime: Runtime, lane: str, generation: int | None) -> bool:
    with session_scope(runtime.database) as session:
        newest = audit.list_records(session, lane=lane, event=AuditEvent.lane_rolled_back, limit=1)
    return bool(newest) and (newest[0].data or {}).get("generation") == generation
