"""Assemble lane diffs into one plan: number and order actions, add the engine's blockers.

Pure: the same diffs, observations, operations and limits give the same plan (apart from
id and times). The kinds' operation tables supply every provider word: phase, effect,
default risk and which targets lanes share.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from reconciler.core.plans import (
    Action,
    BlastRadiusGuard,
    Blocker,
    BlockerType,
    Change,
    Effect,
    Plan,
    Risk,
    canonical_json,
    kind_of_lane,
    plan_digest,
)
from reconciler.errors import ActionParamsRefused
from reconciler.kinds.base import LaneDiff, Observation, OpParams, OpSpec, ProposedAction


@dataclass(frozen=True)
class KindFacts:
    """What the planner needs of one kind: its operations, its guard, how much it owns, and
    what it has to say about a plan's actions for its lanes (`RemarkingKind`), if anything."""

    ops: Mapping[str, OpSpec]
    guard: BlastRadiusGuard
    owned: int
    remarks: Callable[[Sequence[Action]], list[str]] | None = None


def new_plan_id() -> str:
    return "plan-" + secrets.token_hex(6)


def observation_blockers(kind: str, observation: Observation) -> list[Blocker]:
    """A problem with no lane concerns every lane of its kind, and no other."""
    return [
        Blocker(
            type=BlockerType.access_denied
            if problem.access_denied
            else BlockerType.observation_incomplete,
            lane=problem.lane,
            kind=kind if problem.lane is None else None,
            message=problem.reason,
        )
        for problem in observation.problems
    ]


def build_plan(
    *,
    diffs: list[LaneDiff],
    kinds: Mapping[str, KindFacts],
    fingerprints: Mapping[str, str],
    generations: Mapping[str, int | None],
    desired_revision: str,
    created_by: str,
    now: datetime,
    ttl: timedelta,
    blockers: list[Blocker] | None = None,
    notes: list[str] | None = None,
    plan_id: str | None = None,
) -> Plan:
    """`blockers`: found before diffing (preflight, observation); a lane they concern gets
    no actions, since nothing is planned from a partial picture (Invariant 3)."""
    all_blockers: list[Blocker] = list(blockers or [])
    all_notes = list(notes or [])
    proposed: list[_Proposed] = []
    for diff in sorted(diffs, key=lambda d: d.lane):
        all_notes.extend(diff.notes)
        all_blockers.extend(diff.blockers)
        if not diff.actions or any(b.concerns(diff.lane) for b in blockers or []):
            continue  # fail closed
        ops = kinds[kind_of_lane(diff.lane)].ops  # once per lane, not per action
        proposed.extend((diff.lane, action, ops[action.op]) for action in diff.actions)

    actions, actions_json = _number(_dedupe(proposed))
    all_notes.extend(_remarks(actions, kinds))
    all_blockers.extend(_blast_radius(actions, kinds))
    pinned = {lane: generations.get(lane) for lane in sorted(d.lane for d in diffs)}
    ordered_fingerprints = dict(sorted(fingerprints.items()))
    actions_text = canonical_json(actions_json)  # once, for the digest and the stored plan
    del actions_json  # only the text is kept: freed before the digest and the plan are made
    digest = plan_digest(
        desired_revision=desired_revision,
        actions=actions,
        blockers=all_blockers,
        fingerprints=ordered_fingerprints,
        generations=pinned,
        actions_text=actions_text,
    )
    plan = Plan(
        plan_id=plan_id or new_plan_id(),
        digest=digest,
        created_at=now,
        expires_at=now + ttl,
        created_by=created_by,
        desired_revision=desired_revision,
        lanes=sorted(pinned),
        actions=actions,
        blockers=all_blockers,
        fingerprints=ordered_fingerprints,
        notes=all_notes,
        generations=pinned,
    )
    plan.keep_actions_json(None, actions_text)
    return plan


def _remarks(actions: list[Action], kinds: Mapping[str, KindFacts]) -> list[str]:
    """Each kind's notes on the actions the plan holds for its lanes, kinds by name."""
    remarking = {name: facts.remarks for name, facts in kinds.items() if facts.remarks is not None}
    if not remarking:
        return []
    # One pass over the actions, each lane's kind read once: not a pass per kind.
    kind_by_lane: dict[str, str] = {}
    by_kind: dict[str, list[Action]] = {name: [] for name in remarking}
    for action in actions:
        kind = kind_by_lane.get(action.lane)
        if kind is None:
            kind = kind_by_lane[action.lane] = kind_of_lane(action.lane)
        mine = by_kind.get(kind)
        if mine is not None:
            mine.append(action)
    notes: list[str] = []
    for name, remarks in sorted(remarking.items()):
        if by_kind[name]:
            notes.extend(remarks(by_kind[name]))
    return notes


def _blast_radius(actions: list[Action], kinds: Mapping[str, KindFacts]) -> list[Blocker]:
    """Every deletion is counted against its own kind's guard (Invariant 5). The message
    names the deletions that count and why the allowance asked for is what it is: apply
    counts every deletion of the plan, of every kind."""
    deleting: dict[str, list[Action]] = {}
    for action in actions:
        if action.effect is Effect.delete:
            deleting.setdefault(kind_of_lane(action.lane), []).append(action)
    total = sum(len(found) for found in deleting.values())
    per_kind = ", ".join(f"{len(found)} {kind}" for kind, found in sorted(deleting.items()))
    blockers = []
    for kind, found in sorted(deleting.items()):
        facts = kinds[kind]
        if not facts.guard.exceeded_by(len(found), facts.owned):
            continue
        listed = "; ".join(f"{a.id} {a.op} {a.lane}" for a in found)
        whole = (
            f"all {total} of this plan's deletions ({per_kind})"
            if len(deleting) > 1
            else (f"its {total} deletion(s)")
        )
        blockers.append(
            Blocker(
                type=BlockerType.blast_radius_exceeded,
                lane=None,
                message=(
                    f"plan deletes {len(found)} of the {facts.owned} {kind} object(s) Setpoint "
                    f"owns ({listed}); the guard allows at most {facts.guard.max_deletions} "
                    f"and at most {facts.guard.max_share:.0%} of them in one plan. Review "
                    f"them, then apply with --allow-destroy {total}, which allows {whole}"
                ),
                details={"kind": kind, "deletions": len(found), "owned": facts.owned},
            )
        )
    return blockers


# A proposed action, its lane and its operation's spec.
_Proposed = tuple[str, ProposedAction, OpSpec]


def _dedupe(proposed: list[_Proposed]) -> list[_Proposed]:
    """A target lanes share (a product's project) is proposed by each; keep the first.

    A shared target names one outside object, whichever kind's lane proposes it: a product
    lane and its previews' lanes (two kinds) use one project, so the key leaves the kind
    out. The actions naming it in `after` depend on the one action kept (its `provides`)."""
    seen: set[tuple[str, str]] = set()
    kept: list[_Proposed] = []
    for proposal in proposed:
        _, action, spec = proposal
        if spec.shared:
            key = (action.op, action.target)
            if key in seen:
                continue
            seen.add(key)
        kept.append(proposal)
    return kept


# The parts of many actions dumped in one call each (each parameters model by its own
# serialiser and field aliases: `serialize_as_any`), not one Python call per action.
_PARAMS_LIST = TypeAdapter(list[OpParams])
_CHANGES_LIST = TypeAdapter(list[list[Change]])


# Each member's text, read from a dict: an enum's `.value` is a Python-level property,
# read twice per action of a plan of many lanes.
_EFFECT_TEXT: dict[Effect, str] = {effect: effect.value for effect in Effect}
_RISK_TEXT: dict[Risk, str] = {risk: risk.value for risk in Risk}


def _number(proposed: list[_Proposed]) -> tuple[list[Action], list[dict[str, Any]]]:
    """The actions in execution order, and the same as JSON (`dump_actions`'s shape).

    The kinds built the parts typed and validated (each parameters model its operation's
    own, checked here), so nothing is validated again: parameters and changes are dumped in
    one call each for all actions, and each action is assembled (`Action.assembled`)."""
    order = sorted(range(len(proposed)), key=lambda i: (proposed[i][2].phase, proposed[i][0], i))
    for i in order:
        _check_params(*proposed[i])
    params = _PARAMS_LIST.dump_python(
        [proposed[i][1].params for i in order], mode="json", by_alias=True, serialize_as_any=True
    )
    changes = _CHANGES_LIST.dump_python([proposed[i][1].changes for i in order], mode="json")
    providers: dict[str, str] = {}
    actions: list[Action] = []
    dumped: list[dict[str, Any]] = []
    for index, i in enumerate(order):
        lane, action, spec = proposed[i]
        action_id = f"a{index + 1}"
        for ref in action.provides:
            providers[ref] = action_id
        depends_on = (
            sorted({providers[r] for r in action.after if r in providers}) if action.after else []
        )
        risk = action.risk or spec.risk
        op = str(action.op)
        actions.append(
            Action.assembled(
                id=action_id,
                op=op,
                effect=spec.effect,
                lane=lane,
                target=action.target,
                risk=risk,
                reason=action.reason,
                changes=action.changes,
                depends_on=depends_on,
                params=params[index],
                after=action.after,
                provides=action.provides,
            )
        )
        # The same action as JSON (`dump_actions`'s shape), from the same parts.
        dumped.append(
            {
                "id": action_id,
                "op": op,
                "effect": _EFFECT_TEXT[spec.effect],
                "lane": lane,
                "target": action.target,
                "risk": _RISK_TEXT[risk],
                "reason": action.reason,
                "changes": changes[index],
                "depends_on": list(depends_on),
                "params": params[index],
                "after": list(action.after),
                "provides": list(action.provides),
            }
        )
    return actions, dumped


def _check_params(lane: str, action: ProposedAction, spec: OpSpec) -> None:
    """The parameters must be the operation's own model (validated when the kind built it)."""
    if type(action.params) is not spec.params:
        raise ActionParamsRefused(
            f"{lane}: {action.op} takes {spec.params.__name__} parameters, "
            f"not {type(action.params).__name__}"
        )
