"""Promotion: give one lane the image another lane runs and verified.

`promote` surveys the source lane now: it must be converged (no action, no blocker), its
newest deploy must have passed its health checks (at least one), and what it runs must be
pinned by a digest (Dokploy reports the reference it was given; a tag is never promoted).
The product's gate, if it names one, runs next (an HTTP check through the runtime's
SSRF-safe probe, or the operator's command, argv with no shell, whose output is not kept).
Then the target lane's desired image becomes that digest: a new desired generation, whose
plan is an ordinary plan. Every promotion and every refusal is audited, with the gate's
verdict. Nothing outside changes here.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from typing import Any

import anyio

from desired_state.document import Document
from desired_state.issues import InvalidDesiredState
from desired_state.names import has_digest
from reconciler.core.known_good import remember_good, restoring_kind
from reconciler.core.planning import PassContext, load_context, survey
from reconciler.errors import PromotionRefused
from reconciler.kinds.base import GoodState, PromotionGate, RestoringKind
from reconciler.records import audit
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.records.desired import store_revision
from reconciler.runtime import Runtime


@dataclass(frozen=True)
class GateVerdict:
    ok: bool
    gate: str  # "http", "command", or "none" when the product names no gate
    detail: str  # what it answered: a status and reason, or an exit code; never output


@dataclass(frozen=True)
class Promoted:
    source: str
    target: str
    image: str
    generation: int  # the target lane's new desired generation
    gate: GateVerdict


async def run_gate(
    runtime: Runtime, kind: RestoringKind, gate: PromotionGate | None
) -> GateVerdict:
    if gate is None:
        return GateVerdict(True, "none", "the product names no promotion gate")
    if gate.url is not None:
        result = await kind.probe_gate(runtime, gate)
        said = f"GET {gate.url}: {result.status if result.status is not None else 'no answer'}"
        return GateVerdict(result.ok, "http", f"{said} ({result.reason})")
    return await _run_command(gate)


async def _run_command(gate: PromotionGate) -> GateVerdict:
    """The operator's command, argv with no shell; its output is dropped (it may print
    what it should not), its exit code is the verdict."""
    name = gate.command[0]
    try:
        with anyio.fail_after(gate.timeout_seconds):
            done = await anyio.run_process(
                list(gate.command),
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    except TimeoutError:
        return GateVerdict(False, "command", f"{name}: no answer in {gate.timeout_seconds:g}s")
    except OSError as exc:
        return GateVerdict(False, "command", f"{name}: cannot run ({exc.strerror})")
    return GateVerdict(done.returncode == 0, "command", f"{name}: exit code {done.returncode}")


async def promote(
    runtime: Runtime, product: str, source: str, target: str, *, reason: str
) -> Promoted:
    """Promote what `product`'s `source` lane runs into its `target` lane (lane names)."""
    context = await load_context(runtime)
    source_lane, target_lane = context.registry.resolve(
        [f"{product}/{source}", f"{product}/{target}"]
    )
    record: dict[str, Any] = {"reason": reason, "source": source_lane}
    try:
        if source_lane == target_lane:
            raise PromotionRefused(f"--from and --to both name {source_lane}")
        state = await _verified(runtime, context, source_lane)
        record["image"] = state.running
        image = str(state.running)
        kind = restoring_kind(context.registry, target_lane)
        if kind is None:
            raise PromotionRefused(f"{target_lane} cannot take a promoted image")
        promotion = kind.promotion(target_lane, image)
        verdict = await run_gate(runtime, kind, promotion.gate)
        record["gate"] = asdict(verdict)
        if not verdict.ok:
            raise PromotionRefused(f"the promotion gate said no: {verdict.detail}")
    except PromotionRefused as exc:
        record["refused"] = str(exc)
        await in_thread(_audit, runtime, AuditEvent.promotion_refused, target_lane, record)
        raise
    source_text = f"promotion of {source_lane} ({image}) to {target_lane}"
    record.update(
        source_generation=context.registry.generation(source_lane),
        source_verdict=dict(state.verdict),
        from_generation=context.registry.generation(target_lane),
    )
    try:
        generation = await in_thread(
            _store, runtime, promotion.document, source_text, target_lane, record
        )
    except InvalidDesiredState as exc:
        record["refused"] = f"{target_lane} cannot take it: {exc.issues[0].message}"
        await in_thread(_audit, runtime, AuditEvent.promotion_refused, target_lane, record)
        raise PromotionRefused(record["refused"]) from None
    return Promoted(source_lane, target_lane, image, generation, verdict)


async def _verified(runtime: Runtime, context: PassContext, lane: str) -> GoodState:
    """What `lane` runs, when it is Ready on a digest that passed its health checks."""
    seen = await survey(runtime, context, [lane])
    diff = seen.diffs[lane]
    blocked = diff.blockers or any(b.concerns(lane) for b in seen.blockers)
    if diff.actions or blocked:
        pending = f"{len(diff.actions)} action(s) pending" if diff.actions else "it is blocked"
        raise PromotionRefused(f"{lane} is not Ready ({pending}); nothing was promoted")
    kind = restoring_kind(context.registry, lane)
    state = kind.good_state(lane, seen.observation.of(kind.name)) if kind else None
    if state is None:
        raise PromotionRefused(f"{lane} is not Ready: its newest deploy has not passed health")
    if not state.running or not has_digest(state.running):
        raise PromotionRefused(
            f"{lane} runs {state.running or 'no image'}, not an image digest (name@sha256:...)"
        )
    if not state.verdict.get("checks"):
        raise PromotionRefused(
            f"{lane}'s digest never passed a health check: the lane has no healthChecks"
        )
    await in_thread(remember_good, runtime, context, seen)
    return state


def _store(
    runtime: Runtime, document: Document, source: str, lane: str, data: dict[str, Any]
) -> int:
    """The target's new generation and its `lane_promoted` record, in one transaction."""
    now = runtime.now()
    with audit.transaction(runtime.database) as session:
        data["generation"] = generation = store_revision(session, document, source, now=now)
        entry = audit.AuditEntry(AuditEvent.lane_promoted, runtime.actor, lane, data=data)
        audit.append_many(session, [entry], at=now)
    return generation


def _audit(runtime: Runtime, event: AuditEvent, lane: str, data: dict[str, Any]) -> None:
    audit.record(
        runtime.database, event=event, actor=runtime.actor, lane=lane, data=data, at=runtime.now()
    )
