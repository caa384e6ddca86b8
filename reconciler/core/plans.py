"""Typed plans: ordered actions with field-level changes, typed blockers, and fingerprints.

Everything here is data. Building a plan is pure (see `planner.py`); executing one is the
apply engine's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Risk(StrEnum):
    safe = "safe"  # creates, config writes, deploys of unprotected lanes
    disruptive = "disruptive"  # restarts or reroutes something users of a protected lane see
    destructive = "destructive"  # deletes something


class Op(StrEnum):
    create_project = "create_project"
    create_environment = "create_environment"
    create_application = "create_application"
    create_compose = "create_compose"
    set_image = "set_image"
    set_replicas = "set_replicas"
    set_env = "set_env"
    set_compose_file = "set_compose_file"
    upsert_domain = "upsert_domain"
    delete_domain = "delete_domain"
    deploy = "deploy"
    delete_service = "delete_service"


DELETING_OPS = frozenset({Op.delete_service, Op.delete_domain})


class BlockerType(StrEnum):
    observation_incomplete = "observation_incomplete"
    not_owned = "not_owned"
    blast_radius_exceeded = "blast_radius_exceeded"
    protected_lane = "protected_lane"
    action_not_allowed = "action_not_allowed"
    stale_plan = "stale_plan"
    preflight_failed = "preflight_failed"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Change(Frozen):
    """One field's move. Secret fields carry `hmac-sha256:...` fingerprints, never values."""

    field: str
    before: Any = None
    after: Any = None
    secret: bool = False


class Action(Frozen):
    id: str  # a1, a2, ... in execution order
    op: Op
    lane: str
    target: str  # human-readable: "dokploy:application/shop-testing"
    risk: Risk
    reason: str
    changes: list[Change] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    # What the executor needs that is not a change: ids, names, secret *references*.
    params: dict[str, Any] = Field(default_factory=dict)


class Blocker(Frozen):
    type: BlockerType
    lane: str | None
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Plan(Frozen):
    plan_id: str
    digest: str
    created_at: datetime
    expires_at: datetime
    created_by: str
    desired_revision: str
    lanes: list[str]
    actions: list[Action]
    blockers: list[Blocker]
    fingerprints: dict[str, str]  # observed object ref -> hash of the fields the diff used
    notes: list[str] = Field(default_factory=list)  # reported, never acted on (e.g. unmanaged)

    @property
    def deletions(self) -> int:
        return sum(1 for a in self.actions if a.op in DELETING_OPS)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def lane_actions(self, lane: str) -> list[Action]:
        return [a for a in self.actions if a.lane == lane]


def plan_digest(
    *,
    desired_revision: str,
    actions: list[Action],
    blockers: list[Blocker],
    fingerprints: dict[str, str],
) -> str:
    """Content hash of what a plan would do and what it read; ids and times excluded."""
    body = {
        "desired_revision": desired_revision,
        "actions": [a.model_dump(mode="json") for a in actions],
        "blockers": [b.model_dump(mode="json") for b in blockers],
        "fingerprints": dict(sorted(fingerprints.items())),
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


ABSENT = "absent"


def object_fingerprint(salt: str, fields: dict[str, Any]) -> str:
    """Salted, so a fingerprint over env text cannot be used to guess a weak secret in it."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(salt.encode(), canonical.encode(), hashlib.sha256).hexdigest()[:32]
