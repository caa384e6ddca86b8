"""Diff one runner lane: pure, desired against observed, with the time passed in.

The slot decides first what it should hold (`wanted`: a runner, or nothing), then what to do:
look again at a runner started earlier and not online yet, clear an orphan, create, restart,
drain or remove; then the pool's opt-in gates each action
(`runner_gate`), and anything not allowed becomes a typed blocker that names the flag that would
allow it. A busy runner is never proposed for stopping: scaling down waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.github.models import same_repository
from providers.hosts.base import ProcessState
from reconciler.core.outcomes import ObjectRef
from reconciler.core.plans import Blocker, BlockerType
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.runner.lanes import PoolView, RunnerLane
from reconciler.kinds.runner.observed import ObservedRunnerLane, runner_ref
from reconciler.kinds.runner.ops import ALLOW_FLAG, RUNNER_OPS, RunnerOp
from reconciler.kinds.runner.reasons import (
    HOST_FULL,
    HOST_NOT_APPROVED,
    HOST_UNSUPPORTED,
    REPOSITORY_NOT_ALLOWED,
)
from reconciler.kinds.runner.register import Starting


@dataclass(frozen=True)
class RunnerRules:
    offline_grace: float  # an owned registration offline this long is restarted or removed
    orphan_grace: float  # an orphan marked this long ago may be removed


def target_count(pool: PoolView, busy: int) -> int:
    """Runners the pool should have now: the busy ones and one idle spare, within count.min
    and count.max. A pool with count.min 0 keeps no spare: without a demand signal (queued
    jobs) it holds only what is busy, so it drains to zero."""
    spare = 1 if pool.spec.count.min > 0 else 0
    return max(pool.spec.count.min, min(pool.spec.count.max, busy + spare))


def wanted(desired: RunnerLane | None, seen: ObservedRunnerLane) -> bool:
    if desired is None:
        return False
    return desired.slot <= target_count(desired.pool, seen.pool_busy)


def diff_runner_lane(
    lane: str, desired: RunnerLane | None, seen: ObservedRunnerLane, rules: RunnerRules
) -> LaneDiff:
    result = LaneDiff(lane=lane)
    if seen.stranger is not None:
        result.notes.append(
            f"{lane}: runner {seen.stranger.name} (id {seen.stranger.id}) in {seen.scope} is "
            "not Setpoint's (no setpoint-managed label or no ownership record): left alone"
        )
    proposals = _proposals(lane, desired, seen, rules, result.notes)
    if not proposals:
        return result
    slot = _slot(desired, seen)
    name = slot["name"]
    result.actions = [
        ProposedAction(
            key=f"{op.value}:{seen.scope}/{name}",
            op=op.value,
            target=f"runner:{seen.scope}/{name}@{seen.host}",
            reason=reason,
            params=RUNNER_OPS[op].params.model_validate({**slot, **extra}),
        )
        for op, reason, extra in proposals
    ]
    result.blockers = runner_gate(lane, desired, seen, [op for op, _, _ in proposals])
    return result


Proposal = tuple[RunnerOp, str, dict[str, Any]]


def _proposals(
    lane: str,
    desired: RunnerLane | None,
    seen: ObservedRunnerLane,
    rules: RunnerRules,
    notes: list[str],
) -> list[Proposal]:
    started = _started(seen)
    if started is not None:  # nothing else happens to the slot until that start is settled
        return [started]
    # A host that cannot be used shows no processes; that is no evidence of an orphan.
    orphan = _orphan(seen) if seen.host_problem is None else None
    if orphan is not None:  # nothing else happens to the slot until the orphan is gone
        step = _mark_or_remove(seen, orphan, rules)
        return [step] if step is not None else []
    if desired is not None and wanted(desired, seen):
        step = _fill(desired, seen, rules)
    else:
        step = _empty(desired, seen, notes, lane)
    if step is not None:
        return [step]
    if seen.gone:
        forget = [ref.object_id for ref in seen.gone]
        return [(RunnerOp.record, "forget registrations GitHub no longer has", {"forget": forget})]
    return []


def _started(seen: ObservedRunnerLane) -> Proposal | None:
    """A runner created or restarted by an earlier apply that was not online yet: looked at
    again (online: recorded; failed or past the online timeout: cleaned up)."""
    ref = seen.process_ref
    if ref is None or seen.process is None or seen.process.state is ProcessState.stopped:
        return None
    started = Starting.of(seen.facts(ref))
    if started is None:
        return None
    reason = "started by an earlier apply, not seen online yet: looked at again"
    return (RunnerOp.await_online, reason, {"starting": started.facts()})


def _orphan(seen: ObservedRunnerLane) -> str | None:
    """What is orphaned: a registration with no process, or a process of this lane that
    was never registered (not recorded, or already marked)."""
    if seen.runner is not None and seen.process is None and not seen.busy:
        return "registered, but its host has no process"
    # With a stranger holding the name, the process may be the stranger's: never touched.
    unrecorded = not seen.owns_process() or _orphan_since(seen) is not None
    if seen.process is not None and seen.runner is None and seen.stranger is None and unrecorded:
        return "a process that was never registered"
    return None


def _mark_or_remove(seen: ObservedRunnerLane, what: str, rules: RunnerRules) -> Proposal | None:
    marked = _orphan_since(seen)
    if marked is None:
        return (
            RunnerOp.record,
            f"orphan: {what}; marked, removed in a later pass",
            {"orphan": what},
        )
    if seen.now - marked >= rules.orphan_grace:
        return (RunnerOp.remove_orphan, f"orphan since an earlier pass: {what}", {})
    return None


def _orphan_since(seen: ObservedRunnerLane) -> float | None:
    for owned in seen.owned:
        value = owned.facts.get("orphan_seen_at")
        if isinstance(value, int | float):
            return float(value)
    return None


def _fill(desired: RunnerLane, seen: ObservedRunnerLane, rules: RunnerRules) -> Proposal | None:
    runner = seen.runner
    if runner is None:
        return (RunnerOp.create, "the pool needs a runner in this slot", {})
    # A restart under way cordons the runner first: it goes on, and is not undone here.
    restart = _restart_need(desired, seen, rules)
    if restart is not None:
        return restart
    missing = _missing_labels(desired, runner.labels)
    if runner.cordoned and _image_change(desired, seen) is not None:
        return None  # cordoned for a restart onto a new image, now busy: it waits its job
    if runner.cordoned:
        return (RunnerOp.relabel, "drained earlier, needed again: its labels come back", {})
    if missing:
        return (RunnerOp.relabel, f"the pool's labels changed: it lacks {', '.join(missing)}", {})
    return None


def _restart_need(
    desired: RunnerLane, seen: ObservedRunnerLane, rules: RunnerRules
) -> Proposal | None:
    assert seen.runner is not None
    if seen.busy:  # flags lag (busy and offline): never restarted mid-job
        return None
    if seen.runner.online:
        return _image_change(desired, seen)
    if not seen.running:
        return (RunnerOp.restart, "registered and offline, and its process is not running", {})
    offline_since = seen.facts(_runner_ref(seen)).get("offline_seen_at")
    if not isinstance(offline_since, int | float):
        return (RunnerOp.record, "offline while its process runs; watched", {"offline": True})
    if seen.now - offline_since >= rules.offline_grace:
        return (RunnerOp.restart, f"offline for more than {rules.offline_grace:.0f} s", {})
    return None


def _image_change(desired: RunnerLane, seen: ObservedRunnerLane) -> Proposal | None:
    """An idle runner started from another image than its pool now names is restarted."""
    process = seen.process_ref
    started = seen.facts(process).get("image") if process is not None else None
    wanted_image = str(desired.pool.spec.image)
    if not isinstance(started, str) or started == wanted_image:
        return None
    return (RunnerOp.restart, f"started from {started}; the pool now runs {wanted_image}", {})


def _missing_labels(desired: RunnerLane, have: tuple[str, ...]) -> list[str]:
    """Canonical labels the runner lacks; GitHub compares labels without case."""
    present = {label.lower() for label in have}
    return [label for label in desired.pool.labels if label.lower() not in present]


def _empty(
    desired: RunnerLane | None, seen: ObservedRunnerLane, notes: list[str], lane: str
) -> Proposal | None:
    if seen.busy:
        notes.append(f"{lane}: not needed now, but busy: kept until its job ends")
        return None
    if seen.runner is None and not seen.running:
        if desired is None and seen.owns_process():
            return (RunnerOp.remove, "no longer desired: its stopped process is deleted", {})
        return None
    reason = "no longer desired" if desired is None else "the pool needs fewer runners now"
    if desired is None or "remove" in desired.pool.spec.allow:
        return (RunnerOp.remove, reason, {})
    return (RunnerOp.drain, reason, {})


def _runner_ref(seen: ObservedRunnerLane) -> ObjectRef:
    assert seen.runner is not None
    return runner_ref(seen.runner.id)


def _slot(desired: RunnerLane | None, seen: ObservedRunnerLane) -> dict[str, Any]:
    """What every operation's parameters hold (`params.SlotParams`); never a secret."""
    name = desired.name if desired else _owned_name(seen)
    params: dict[str, Any] = {
        "name": name,
        "scope": seen.scope,
        "host": seen.host,
        "runner_id": seen.runner.id if seen.runner else None,
        "owns_process": seen.owns_process(),
        "forget": [ref.object_id for ref in seen.gone],
    }
    if seen.runner is not None:
        idle = seen.facts(_runner_ref(seen)).get("idle_seen_at")
        params["idle_seen_at"] = idle if isinstance(idle, int | float) else None
    if desired is not None:
        params.update(
            pool=desired.pool.name,
            labels=list(desired.pool.labels),
            image=str(desired.pool.spec.image),
            ephemeral=desired.pool.spec.ephemeral,
            github_url=desired.pool.github_url,
        )
    return params


def _owned_name(seen: ObservedRunnerLane) -> str:
    for owned in seen.owned:
        return str(owned.facts.get("name", owned.name))
    if seen.process is not None:
        return seen.process.name
    return seen.runner.name if seen.runner else ""


def runner_gate(
    lane: str, desired: RunnerLane | None, seen: ObservedRunnerLane, ops: list[RunnerOp]
) -> list[Blocker]:
    """Blockers for actions the pool has not opted in to. `record` changes nothing outside
    and is never blocked; a lane no longer desired is left to an operator (lane policy)."""
    acting = [op for op in ops if ALLOW_FLAG[op] is not None]
    if not acting:
        return []
    if seen.stranger is not None and RunnerOp.create in acting:
        return [_blocker(BlockerType.not_owned, lane, _stranger_message(seen))]
    if desired is None:
        return []
    found = _pool_gate(lane, desired.pool, seen)
    if not found and RunnerOp.create in acting:
        found = _capacity_gate(lane, desired.pool, seen)
    if found:
        return found
    return [
        _blocker(
            BlockerType.action_not_allowed,
            lane,
            f"RunnerPool {desired.pool.name} does not allow `{ALLOW_FLAG[op]}`: add it to "
            f"spec.allow to let Setpoint {op.value.replace('_', ' ')} runners",
            flag=f"spec.allow: {ALLOW_FLAG[op]}",
        )
        for op in acting
        if ALLOW_FLAG[op] not in desired.pool.spec.allow
    ]


def _stranger_message(seen: ObservedRunnerLane) -> str:
    assert seen.stranger is not None
    return (
        f"a runner named {seen.stranger.name} (id {seen.stranger.id}) already exists in "
        f"{seen.scope} and Setpoint does not own it; remove it on GitHub, or rename the pool"
    )


def _pool_gate(lane: str, pool: PoolView, seen: ObservedRunnerLane) -> list[Blocker]:
    if pool.host is None:
        return [
            _blocker(
                HOST_NOT_APPROVED.code,
                lane,
                f"RunnerPool {pool.name} names Host {pool.spec.host}, which desired state "
                "does not declare: add a Host with that name and `spec.approved: true`",
                flag="Host.spec.approved",
            )
        ]
    if not pool.host.approved:
        return [
            _blocker(
                HOST_NOT_APPROVED.code,
                lane,
                f"Host {pool.spec.host} is not approved: set `spec.approved: true` on Host "
                f"{pool.spec.host} to let RunnerPool {pool.name} place runners there",
                flag="Host.spec.approved",
            )
        ]
    if seen.host_problem is not None:
        return [_blocker(HOST_UNSUPPORTED.code, lane, seen.host_problem)]
    return _repository_gate(lane, pool)


def _capacity_gate(lane: str, pool: PoolView, seen: ObservedRunnerLane) -> list[Blocker]:
    """A new process on a host that holds its `maxRunners` already is refused."""
    assert pool.host is not None
    others = seen.host_runners - (1 if seen.process is not None else 0)
    if seen.process is not None or others < pool.host.max_runners:
        return []
    message = (
        f"Host {pool.spec.host} holds {others} runner(s), its spec.maxRunners: raise "
        f"maxRunners, or lower another pool's count, to place {lane}"
    )
    return [_blocker(HOST_FULL.code, lane, message, flag="Host.spec.maxRunners")]


def _repository_gate(lane: str, pool: PoolView) -> list[Blocker]:
    allowed = [str(r) for r in pool.spec.allowed_repositories]
    if pool.spec.scope == "organization" and not allowed:
        message = (
            f"RunnerPool {pool.name} is organization-wide but allows no repository: list the "
            "repositories its runners may serve in spec.allowedRepositories"
        )
        return [_blocker(REPOSITORY_NOT_ALLOWED.code, lane, message)]
    listed = any(same_repository(str(pool.spec.repository), r) for r in allowed)
    if pool.spec.scope == "repository" and allowed and not listed:
        message = (
            f"RunnerPool {pool.name} is for {pool.spec.repository}, which its "
            f"spec.allowedRepositories ({', '.join(allowed)}) does not list: add it there"
        )
        return [_blocker(REPOSITORY_NOT_ALLOWED.code, lane, message)]
    return []


def _blocker(kind: str, lane: str, message: str, **details: Any) -> Blocker:
    return Blocker(type=kind, lane=lane, message=message, details=details)
