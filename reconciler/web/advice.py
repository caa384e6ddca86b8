"""What an operator can do about each blocker, as the plan page says it under the blocker.

The engine's own reasons are advised on here; a kind's reasons carry their advice in their
declaration (`BlockerReason.advice`, in the kind's `reasons.py`).
"""

from __future__ import annotations

from reconciler.core.plans import Blocker, BlockerType
from reconciler.kinds import declared_reasons

ADVICE: dict[str, str] = {
    BlockerType.observation_incomplete: (
        "A provider could not be read completely, so nothing is planned from a partial view. "
        "Check that it answers and its credentials work, then compute a new plan."
    ),
    BlockerType.not_owned: (
        "Setpoint does not own the object this would change. Take it into the lane with "
        "`setpoint adopt` (audited), or give the lane a service name of its own."
    ),
    BlockerType.blast_radius_exceeded: (
        "The plan deletes more than the guard allows. If every deletion is meant, apply with "
        "an allowance of exactly that many deletions (`setpoint apply PLAN --allow-destroy N`, "
        "or the number asked for on the confirmation page)."
    ),
    BlockerType.protected_lane: (
        "The lane is protected (`protect: true`). Remove the flag in desired state first if "
        "this change is really wanted."
    ),
    BlockerType.action_not_allowed: (
        "Lane policy does not let this trigger run the action unattended: an operator applies "
        "it by naming the plan."
    ),
    BlockerType.lane_busy: (
        "Another worker holds the lane while it applies. The next pass tries again when it "
        "is done; an operator may apply once it is."
    ),
    BlockerType.target_busy: (
        "Another worker is changing an object this plan's lanes share (a project). The next "
        "pass plans again once it is done."
    ),
    BlockerType.stale_plan: (
        "The plan no longer says what would happen. Compute a new plan (`setpoint plan`) and "
        "review that one."
    ),
    BlockerType.preflight_failed: (
        "A provider did not answer. Check its URL and that it is up; the next pass tries again."
    ),
    BlockerType.reason_required: (
        "The lane's policy (`requireReason: true`) wants every apply to say why. Give a "
        "reason in the form below, or `setpoint apply PLAN --reason TEXT`."
    ),
    BlockerType.credentials_refused: (
        "A provider refused Setpoint's credentials. Fix the key or token (and its "
        "permissions), then compute a new plan."
    ),
    BlockerType.access_denied: (
        "The provider accepted Setpoint's credentials but refused them this lane's object. "
        "Give the key's member access to it (Dokploy: the service or project, or name a "
        "server; GitHub: the token's permission or repository), then compute a new plan."
    ),
    BlockerType.invalid_desired_state: (
        "Stored desired state breaks a rule added since it was stored. Fix the YAML and run "
        "`setpoint desired apply` again."
    ),
}

_UNKNOWN = "Read the message above; then compute a new plan."


def advice_for(blocker: Blocker) -> str:
    if blocker.type in ADVICE:
        return ADVICE[blocker.type]
    declared = declared_reasons().get(blocker.type)
    return declared.advice if declared is not None and declared.advice else _UNKNOWN
