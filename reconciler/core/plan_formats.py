"""Read a stored plan body of any format Setpoint has written: plans outlive upgrades.

A plan is stored as JSON (`Plan.model_dump(mode="json")`) with its `format`
(`plans.PLAN_FORMAT`). Reading one upgrades it step by step to the current format, so a
plan computed before an upgrade still applies after it. Its digest stays the one it was
stored with: `body_digest` checks a body against it in the format it was written in.

Format 1 (no `format` key) held ordering inside the parameters: a `provides` list of
refs, and `{"ref": ..., "id": None}` entries for refs an earlier action had to make.
Two kinds of entry were there for ordering only (the product kind's route moves): `taker`
and `after:<service id>`. Format 2 holds ordering in each action's `after`/`provides`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reconciler.core.plans import PLAN_FORMAT, Plan, canonical_json

_ORDERING_ONLY = "taker"  # format 1: a release_domain's link to the lane taking the route
_ORDERING_ONLY_PREFIX = "after:"  # format 1: an upsert_domain's wait for a route's release


def plan_of_body(body: dict[str, Any]) -> Plan:
    """The plan a stored body holds, upgraded to the current format. Raises pydantic's
    `ValidationError` for a body no format describes."""
    if body.get("format", 1) == 1:
        body = _from_format_1(body)
    return Plan.model_validate(body)


def plan_of_json(text: str) -> Plan:
    return plan_of_body(json.loads(text))


def body_digest(body: dict[str, Any]) -> str:
    """The digest of a stored body as its own format computed it: a hash of what the plan
    would do and what it read (ids, times and the format left out). `plans.plan_digest`
    gives the same for the plan it was dumped from."""
    digested = {
        "desired_revision": body.get("desired_revision"),
        "generations": dict(sorted((body.get("generations") or {}).items())),
        "actions": body.get("actions", []),
        "blockers": body.get("blockers", []),
        "fingerprints": dict(sorted((body.get("fingerprints") or {}).items())),
    }
    return hashlib.sha256(canonical_json(digested).encode()).hexdigest()


def _from_format_1(body: dict[str, Any]) -> dict[str, Any]:
    actions = [_action_from_format_1(a) for a in body.get("actions", [])]
    return {**body, "format": PLAN_FORMAT, "actions": actions}


def _action_from_format_1(action: dict[str, Any]) -> dict[str, Any]:
    """Ordering moves out of the parameters; `depends_on` (action ids) was stored already."""
    params = dict(action.get("params") or {})
    provides = params.pop("provides", [])
    after = [
        str(value["ref"])
        for value in params.values()
        if isinstance(value, dict) and "ref" in value and value.get("id") is None
    ]
    params = {
        name: value
        for name, value in params.items()
        if name != _ORDERING_ONLY and not name.startswith(_ORDERING_ONLY_PREFIX)
    }
    return {**action, "params": params, "after": after, "provides": list(provides)}
