"""The blocker reasons the product kind raises, beside the engine's own (`core/reasons.py`).

The preview kind raises them too (it plans on the product kind's parts) and declares the
same table.
"""

from __future__ import annotations

from reconciler.core.reasons import BlockerReason, reason_table

# The lane would route a host and path another lane declares, or another service holds:
# an edit to one of the domains mends it, not time.
ROUTE_CONFLICT = BlockerReason(
    "route_conflict",
    temporary=False,
    advice=(
        "Another lane, or a service Setpoint does not manage, routes the same host and path. "
        "Change one of the domains in desired state."
    ),
)

# The lane's last deploy of this configuration failed: it is deployed again after its
# backoff (a change to the desired configuration deploys at once), so time mends it.
DEPLOY_FAILED = BlockerReason(
    "deploy_failed",
    temporary=True,
    advice=(
        "The last deploy of this configuration failed; it is tried again after its backoff. "
        "Read the deployment's log in Dokploy, or change the lane's configuration to deploy "
        "at once."
    ),
)

PRODUCT_REASONS = reason_table(ROUTE_CONFLICT, DEPLOY_FAILED)
