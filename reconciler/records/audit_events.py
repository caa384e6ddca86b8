"""The audit log's event names.

A plain enum in a module of its own, importing nothing: the CLI offers these as `--event`
choices, and building that option must not load the database layer (`setpoint --help`).
"""

from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    plan_computed = "plan_computed"
    plan_blocked = "plan_blocked"
    apply_started = "apply_started"
    action_intent = "action_intent"
    action_result = "action_result"
    action_skipped = "action_skipped"
    apply_finished = "apply_finished"
    apply_refused = "apply_refused"
    apply_interrupted = "apply_interrupted"
    lease_released = "lease_released"
    pass_completed = "pass_completed"  # noqa: S105 -- an event name, not a password
    plans_pruned = "plans_pruned"
    lane_degraded = "lane_degraded"  # a converged lane's health check failed
    lane_recovered = "lane_recovered"  # a degraded lane's health check passed again
    adopted = "adopted"
    lane_forgotten = "lane_forgotten"
    lane_rolled_back = "lane_rolled_back"  # a known-good state written back as a generation
    lane_promoted = "lane_promoted"  # a verified image written into another lane
    promotion_refused = "promotion_refused"
    desired_applied = "desired_applied"
    verify_result = "verify_result"
    secret_stored = "secret_stored"  # noqa: S105 -- an event name, not a password
    secret_deleted = "secret_deleted"  # noqa: S105 -- an event name, not a password
    audit_head_repaired = "audit_head_repaired"
    api_denied = "api_denied"  # a token or caller the API refused, and why
    webhook_refused = "webhook_refused"
    reconcile_requested = "reconcile_requested"
    grant_added = "grant_added"
    grant_removed = "grant_removed"
    operator_token_created = "operator_token_created"  # noqa: S105 -- an event name
    operator_token_revoked = "operator_token_revoked"  # noqa: S105 -- an event name
