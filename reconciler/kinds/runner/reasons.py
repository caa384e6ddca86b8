"""The blocker reasons the runner kind raises, beside the engine's own (`core/reasons.py`).

None of them is mended by time alone: each needs an operator's edit (approve or declare a
host, raise its `maxRunners`, allow the repository) or a change on the host itself.
"""

from __future__ import annotations

from reconciler.core.notices import LaneNotices, Notice
from reconciler.core.reasons import BlockerReason, reason_table

HOST_NOT_APPROVED = BlockerReason(
    "host_not_approved",
    temporary=False,
    advice=(
        "The pool's host is not declared, or not approved. Declare the Host with "
        "`approved: true` in desired state, or move the pool to an approved host."
    ),
)
HOST_UNSUPPORTED = BlockerReason(
    "host_unsupported",
    temporary=False,
    advice=(
        "No host adapter of this Setpoint can use the pool's host, or its provider does not "
        "list it. Check the Host's type and that its provider is configured."
    ),
)
HOST_FULL = BlockerReason(
    "host_full",
    temporary=False,
    advice=(
        "The host holds its `maxRunners` already. Raise `Host.spec.maxRunners`, lower the "
        "pool's count, or move the pool to another host."
    ),
)
REPOSITORY_NOT_ALLOWED = BlockerReason(
    "repository_not_allowed",
    temporary=False,
    advice=(
        "The pool's `allowedRepositories` does not list the repository its runners serve (or "
        "lists none, for an organization-wide pool). List it there."
    ),
)

RUNNER_REASONS = reason_table(
    HOST_NOT_APPROVED, HOST_UNSUPPORTED, HOST_FULL, REPOSITORY_NOT_ALLOWED
)

# A runner pool's lane that is Stalled is a runner an operator must look at.
RUNNER_NOTICES = LaneNotices(stalled=Notice("runner_unhealthy", "runner unhealthy"))
