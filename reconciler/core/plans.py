"""Typed plans: ordered actions with field-level changes, typed blockers, and fingerprints.

Everything here is data, and none of it names a lane kind: an action carries its kind's
operation name as an opaque string beside the engine's generic `Effect` (Terraform's
create/update/delete verbs), which is all the engine decides on. Building a plan is pure
(`assembly.py`); executing one is `apply.py`'s job.

A lane key carries its kind, `product:shop/testing`, so two kinds never collide on a name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Risk(StrEnum):
    safe = "safe"  # creates, config writes, deploys of unprotected lanes
    disruptive = "disruptive"  # restarts or reroutes something users of a protected lane see
    destructive = "destructive"  # deletes something


class Effect(StrEnum):
    """What an operation does to the outside world, in the engine's words."""

    create = "create"
    update = "update"
    run = "run"  # deploy, restart, verify: changes what runs, not what is configured
    delete = "delete"


class Trigger(StrEnum):
    """Who opted in to an apply; lane policy decides what each may run unattended."""

    operator = "operator"  # a person named the plan id
    schedule = "schedule"  # a scheduled pass
    workflow = "workflow"  # a CI workflow's request for one lane


LANE_KEY_SEPARATOR = ":"


def lane_key(kind: str, name: str) -> str:
    return f"{kind}{LANE_KEY_SEPARATOR}{name}"


def kind_of_lane(key: str) -> str:
    """The kind part of a lane key; empty for a bare name."""
    kind, separator, _ = key.partition(LANE_KEY_SEPARATOR)
    return kind if separator else ""


def name_of_lane(key: str) -> str:
    """The kind's own name for the lane: `shop/testing` for `product:shop/testing`."""
    _, separator, name = key.partition(LANE_KEY_SEPARATOR)
    return name if separator else key


@dataclass(frozen=True)
class BlastRadiusGuard:
    """A plan may delete at most `max_deletions` of a kind's owned objects, and at most
    `max_share` of them; each kind brings limits that suit it."""

    max_deletions: int = 1
    max_share: float = 0.25

    def exceeded_by(self, deletions: int, owned: int) -> bool:
        if deletions == 0:
            return False
        share = deletions / owned if owned else 1.0
        return deletions > self.max_deletions or share > self.max_share


class BlockerType(StrEnum):
    """The engine's own blocker reasons; whether time mends each is `core/reasons.py`'s.
    A kind's own reasons (a route conflict, a full runner host) are declared by the kind
    (`LaneKind.reasons`), so `Blocker.type` is a plain string: one of these or a kind's."""

    observation_incomplete = "observation_incomplete"
    not_owned = "not_owned"
    blast_radius_exceeded = "blast_radius_exceeded"
    protected_lane = "protected_lane"
    # lane policy does not let this trigger run the action unattended
    action_not_allowed = "action_not_allowed"
    stale_plan = "stale_plan"
    preflight_failed = "preflight_failed"
    # a provider refused the credentials (401, 403): time does not mend it, an operator must
    credentials_refused = "credentials_refused"
    # the provider took the credentials but refused this lane's object or call (Dokploy's
    # per-service 401, GitHub's 403 or a private repository it hides): this lane only
    access_denied = "access_denied"
    # stored desired state the current rules refuse (stored before they existed)
    invalid_desired_state = "invalid_desired_state"
    # the lane's policy (`requireReason`) wants the apply to say why, and it did not
    reason_required = "reason_required"
    # another worker holds the lane's lease, or a shared target's (a project lanes share):
    # given back when its apply ends, so time mends both
    lane_busy = "lane_busy"
    target_busy = "target_busy"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Change(Frozen):
    """One field's move. Secret fields carry `hmac-sha256:...` fingerprints, never values.
    A long text field carries digests in `before`/`after` and, in `diff`, a unified diff
    the kind made safe to show (credential-looking lines masked)."""

    field: str
    before: Any = None
    after: Any = None
    secret: bool = False
    diff: str | None = None


class Action(Frozen):
    id: str  # a1, a2, ... in execution order
    op: str  # the kind's operation name, e.g. "deploy"
    effect: Effect
    lane: str  # lane key, "kind:name"
    target: str  # human-readable: "dokploy:application/shop-testing"
    risk: Risk
    reason: str
    changes: list[Change] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)  # action ids, from `after`
    # The operation's parameters (the kind's `OpSpec.params` model, as JSON): what the
    # executor needs that is not a change: ids, names, secret *references*.
    params: dict[str, Any] = Field(default_factory=dict)
    # Refs (the kind's names for outside objects) this action needs made first, and the
    # refs it makes; `depends_on` holds the actions of this plan that provide them.
    after: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    # Ids of `after` refs that earlier actions of this apply reported (`Done.provided`),
    # whichever kind's lane made them: set by the apply, never stored or digested. None
    # rather than an empty dict: a plan of many lanes holds one action each.
    known: dict[str, str] | None = Field(default=None, exclude=True)

    @classmethod
    def assembled(
        cls,
        *,
        id: str,
        op: str,
        effect: Effect,
        lane: str,
        target: str,
        risk: Risk,
        reason: str,
        changes: list[Change],
        depends_on: list[str],
        params: dict[str, Any],
        after: tuple[str, ...],
        provides: tuple[str, ...],
    ) -> Action:
        """An action from parts already typed and checked (the planner's: each kind built and
        validated its own), as `model_construct` makes it, without its generic walk over
        every field's aliases and defaults: that walk was the dearest part of numbering a
        plan of many lanes. Every field but `known` is given, and counts as set."""
        action = cls.__new__(cls)
        fields = {
            "id": id,
            "op": op,
            "effect": effect,
            "lane": lane,
            "target": target,
            "risk": risk,
            "reason": reason,
            "changes": changes,
            "depends_on": depends_on,
            "params": params,
            "after": after,
            "provides": provides,
            "known": None,
        }
        object.__setattr__(action, "__dict__", fields)
        # One set for every assembled action (700 bytes each, 42 MB over a 60,000-action
        # plan): a frozen model never changes it, and `model_copy` copies it first.
        object.__setattr__(action, "__pydantic_fields_set__", _ASSEMBLED_FIELDS_SET)
        object.__setattr__(action, "__pydantic_extra__", None)
        object.__setattr__(action, "__pydantic_private__", None)
        return action

    def given(self, provided: Mapping[str, str]) -> Action:
        """This action with the ids `provided` holds of its `after` refs (pure)."""
        known = {ref: provided[ref] for ref in self.after if ref in provided}
        return self.model_copy(update={"known": known}) if known else self

    def known_id(self, ref: str) -> str | None:
        """The id an earlier action of this apply reported for `ref`, if any."""
        return None if self.known is None else self.known.get(ref)


# The fields `Action.assembled` sets (`known` is the apply's, never given when planning).
_ASSEMBLED_FIELDS = frozenset(Action.model_fields) - {"known"}
_ASSEMBLED_FIELDS_SET = set(_ASSEMBLED_FIELDS)


class Blocker(Frozen):
    """Stops an apply. Scoped to one lane, to every lane of one kind (`lane` None, `kind`
    set: that kind's provider could not be read), or to the whole plan (both None)."""

    type: str  # a `BlockerType`, or a reason the lane's kind declares
    lane: str | None
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    kind: str | None = None

    def concerns(self, lane: str) -> bool:
        if self.lane is not None:
            return self.lane == lane
        return self.kind is None or self.kind == kind_of_lane(lane)


# The shape of a stored plan's body. 1: parameters untyped, ordering by `provides` and
# `{"ref", "id": None}` entries inside them; 2: `after`/`provides` fields of each action.
# `plan_formats.plan_of_body` reads every format.
PLAN_FORMAT = 2


class Plan(Frozen):
    format: int = PLAN_FORMAT
    plan_id: str
    digest: str
    created_at: datetime
    expires_at: datetime
    created_by: str
    desired_revision: str  # of the whole fleet, for people; staleness uses `generations`
    lanes: list[str]
    actions: list[Action]
    blockers: list[Blocker]
    fingerprints: dict[str, str]  # observed object ref -> hash of the fields the diff used
    notes: list[str] = Field(default_factory=list)  # reported, never acted on (e.g. unmanaged)
    # Each lane's desired generation when planned (None: no longer desired). An edit to a
    # lane makes its plans stale; an edit to another lane does not (Invariant 13).
    generations: dict[str, int | None] = Field(default_factory=dict)

    def keep_actions_json(
        self, dumped: list[dict[str, Any]] | None, text: str | None = None
    ) -> None:
        """`dumped` is `self.actions` as JSON (`dump_actions`), and `text` that as canonical
        JSON text (`canonical_json`), already made for the digest: `actions_json` and
        `actions_text` return them rather than making them again (None: not kept; the
        planner keeps only the text, which is all that storing the plan needs, so the
        dumped actions are freed once encoded). Kept beside the plan, not in it, so plans
        compare and copy as before; a copy with other actions makes its own."""
        _ACTIONS_JSON[id(self)] = (self.actions, dumped, text)
        weakref.finalize(self, _ACTIONS_JSON.pop, id(self), None)

    def actions_json(self) -> list[dict[str, Any]]:
        kept = _ACTIONS_JSON.get(id(self))
        if kept is not None and kept[0] is self.actions and kept[1] is not None:
            return kept[1]
        return dump_actions(self.actions)

    def actions_text(self) -> str:
        kept = _ACTIONS_JSON.get(id(self))
        if kept is not None and kept[0] is self.actions and kept[2] is not None:
            return kept[2]
        return canonical_json(self.actions_json())

    def stored_body(self) -> dict[str, Any]:
        """The plan as JSON, as the plan store keeps it (`Plan.model_validate` reads it)."""
        body = self.model_dump(mode="json", exclude={"actions"})
        body["actions"] = self.actions_json()
        return body

    def stored_body_text(self) -> str:
        """`stored_body` as JSON text, its actions the very text the digest was taken over
        (encoded once: the dearest part of storing a plan of many lanes)."""
        rest = json.dumps(self.model_dump(mode="json", exclude={"actions"}))
        return f'{{"actions":{self.actions_text()},{rest[1:]}'

    @property
    def deletions(self) -> int:
        return sum(1 for a in self.actions if a.effect is Effect.delete)

    def blockers_for(self, lane: str) -> list[Blocker]:
        return [b for b in self.blockers if b.concerns(lane)]

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def lane_actions(self, lane: str) -> list[Action]:
        return [a for a in self.actions if a.lane == lane]


# Plan id(...) -> (its actions list, that list as JSON, and as canonical text if made),
# while the plan lives.
_ACTIONS_JSON: dict[int, tuple[list[Action], list[dict[str, Any]] | None, str | None]] = {}


# A plan's actions in one call each way: one pass in pydantic's core for the whole list,
# rather than one Python call (and its overhead) per action of a plan of many lanes.
_ACTION_LIST = TypeAdapter(list[Action])


def dump_actions(actions: list[Action]) -> list[dict[str, Any]]:
    dumped: list[dict[str, Any]] = _ACTION_LIST.dump_python(actions, mode="json")
    return dumped


def canonical_json(value: Any) -> str:
    """The text a digest is taken over: keys sorted, no spaces. The value is plain JSON data
    (dumped models, parsed text), which holds no cycle, so the encoder is not asked to look
    for one: the same text, without a mark put and taken per list and dict (a fifth of
    encoding a 10,000-lane plan's actions)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), check_circular=False)


def plan_digest(
    *,
    desired_revision: str,
    actions: list[Action],
    blockers: list[Blocker],
    fingerprints: dict[str, str],
    generations: dict[str, int | None],
    actions_text: str | None = None,
) -> str:
    """Content hash of what a plan would do and what it read; ids and times excluded.
    `actions_text`: `actions` already encoded (`canonical_json` of `dump_actions`), so a
    plan's actions are encoded once, for the digest and the stored plan."""
    rest = {
        "desired_revision": desired_revision,
        "generations": dict(sorted(generations.items())),
        "blockers": [b.model_dump(mode="json") for b in blockers],
        "fingerprints": dict(sorted(fingerprints.items())),
    }
    if actions_text is None:
        actions_text = canonical_json(dump_actions(actions))
    # The canonical text of the whole body (`plan_formats.body_digest`'s), the actions
    # spliced in: "actions" sorts first of its keys.
    # Hashed piece by piece: the whole text joined and encoded at once would be two more
    # copies of a large plan's actions, its peak memory (UTF-8 is encoded per character,
    # so the pieces' bytes are the whole text's).
    digest = hashlib.sha256(b'{"actions":')
    for start in range(0, len(actions_text), _HASHED_PIECE):
        digest.update(actions_text[start : start + _HASHED_PIECE].encode())
    digest.update(f",{canonical_json(rest)[1:]}".encode())
    return digest.hexdigest()


_HASHED_PIECE = 1 << 20  # characters


ABSENT = "absent"


def object_fingerprint(salt: str, fields: dict[str, Any]) -> str:
    """Salted, so a fingerprint over env text cannot be used to guess a weak secret in it."""
    canonical = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), default=str, check_circular=False
    )  # a kind's plain facts: no cycle to look for (as `canonical_json`)
    # `hmac.digest`: the same digest in one C call, without an `HMAC` object's two hashes.
    return hmac.digest(salt.encode(), canonical.encode(), "sha256").hex()[:32]
