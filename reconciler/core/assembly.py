"""Assemble lane diffs into one plan: number and order actions, add the engine's blockers.

Pure: the same diffs, observation and limits give the same plan (apart from id and times).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.core.plans import (
    DELETING_OPS,
    Action,
    Blocker,
    BlockerType,
    Op,
    Plan,
    plan_digest,
)
from reconciler.kinds.base import LaneDiff, Observation, ProposedAction

# Dependency order: a phase only uses what earlier phases made. Deletions go last, so a
# failure earlier in the plan never leaves a lane with its old service gone.
PHASES: dict[Op, int] = {
    Op.create_project: 0,
    Op.create_environment: 1,
    Op.create_application: 2,
    Op.create_compose: 2,
    Op.set_image: 3,
    Op.set_compose_file: 3,
    Op.set_replicas: 3,
    Op.set_env: 3,
    Op.upsert_domain: 4,
    Op.delete_domain: 4,
    Op.deploy: 5,
    Op.delete_service: 6,
}


@dataclass(frozen=True)
class BlastRadiusGuard:
    """A plan may delete at most `max_deletions` owned objects and at most `max_share` of them."""

    max_deletions: int = 1
    max_share: float = 0.25

    def exceeded_by(self, deletions: int, owned: int) -> bool:
        if deletions == 0:
            return False
        share = deletions / owned if owned else 1.0
        return deletions > self.max_deletions or share > self.max_share


def new_plan_id() -> str:
    return "plan-" + secrets.token_hex(6)


def build_plan(
    *,
    diffs: list[LaneDiff],
    observation: Observation,
    desired_revision: str,
    owned_objects: int,
    guard: BlastRadiusGuard,
    created_by: str,
    now: datetime,
    ttl: timedelta,
    plan_id: str | None = None,
    extra_blockers: list[Blocker] | None = None,
) -> Plan:
    blockers: list[Blocker] = list(extra_blockers or [])
    notes = list(observation.notes)
    proposed: list[tuple[str, ProposedAction]] = []
    lanes = sorted(d.lane for d in diffs)

    for problem in observation.problems:
        blockers.append(
            Blocker(
                type=BlockerType.observation_incomplete, lane=problem.lane, message=problem.reason
            )
        )
    incomplete = {p.lane for p in observation.problems}
    for diff in sorted(diffs, key=lambda d: d.lane):
        notes.extend(diff.notes)
        blockers.extend(diff.blockers)
        if None in incomplete or diff.lane in incomplete:
            continue  # fail closed: no action is planned from a partial picture
        proposed.extend((diff.lane, action) for action in diff.actions)

    actions = _number(_dedupe(proposed))
    deletions = sum(1 for a in actions if a.op in DELETING_OPS)
    if guard.exceeded_by(deletions, owned_objects):
        blockers.append(
            Blocker(
                type=BlockerType.blast_radius_exceeded,
                lane=None,
                message=(
                    f"plan deletes {deletions} of {owned_objects} owned object(s); the guard "
                    f"allows {guard.max_deletions} and {guard.max_share:.0%}. Review it, then "
                    f"apply with --allow-destroy {deletions}"
                ),
                details={"deletions": deletions, "owned": owned_objects},
            )
        )
    fingerprints = dict(sorted(observation.fingerprints.items()))
    digest = plan_digest(
        desired_revision=desired_revision,
        actions=actions,
        blockers=blockers,
        fingerprints=fingerprints,
    )
    return Plan(
        plan_id=plan_id or new_plan_id(),
        digest=digest,
        created_at=now,
        expires_at=now + ttl,
        created_by=created_by,
        desired_revision=desired_revision,
        lanes=lanes,
        actions=actions,
        blockers=blockers,
        fingerprints=fingerprints,
        notes=notes,
    )


def _dedupe(proposed: list[tuple[str, ProposedAction]]) -> list[tuple[str, ProposedAction]]:
    """Lanes of one product share a project (and maybe an environment): create it once."""
    seen: set[tuple[Op, str]] = set()
    kept: list[tuple[str, ProposedAction]] = []
    for lane, action in proposed:
        if action.op in (Op.create_project, Op.create_environment):
            if (action.op, action.target) in seen:
                continue
            seen.add((action.op, action.target))
        kept.append((lane, action))
    return kept


def _number(proposed: list[tuple[str, ProposedAction]]) -> list[Action]:
    ordered = sorted(
        enumerate(proposed), key=lambda item: (PHASES[item[1][1].op], item[1][0], item[0])
    )
    providers: dict[str, str] = {}
    actions: list[Action] = []
    for index, (_, (lane, action)) in enumerate(ordered, start=1):
        action_id = f"a{index}"
        needs = _refs_needed(action)
        for ref in action.params.get("provides", []):
            providers[ref] = action_id
        actions.append(
            Action(
                id=action_id,
                op=action.op,
                lane=lane,
                target=action.target,
                risk=action.risk,
                reason=action.reason,
                changes=action.changes,
                depends_on=sorted({providers[r] for r in needs if r in providers}),
                params=action.params,
            )
        )
    return actions


def _refs_needed(action: ProposedAction) -> list[str]:
    refs = []
    for value in action.params.values():
        if isinstance(value, dict) and "ref" in value and value.get("id") is None:
            refs.append(str(value["ref"]))
    return refs
