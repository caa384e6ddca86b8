"""Every table, imported in one place so that metadata (and alembic) sees them all."""

from __future__ import annotations

from sqlmodel import SQLModel

from reconciler.records.audit import AuditHead, AuditRecord
from reconciler.records.desired import DesiredObject
from reconciler.records.feedback_deliveries import FeedbackDelivery
from reconciler.records.grants import Grant
from reconciler.records.known_good import KnownGoodState
from reconciler.records.lane_health import LaneHealth
from reconciler.records.leases import LaneLease
from reconciler.records.notifications import Notification
from reconciler.records.oidc_replays import OidcReplay
from reconciler.records.operations import Operation
from reconciler.records.operator_tokens import OperatorToken
from reconciler.records.ownership import OwnedObject
from reconciler.records.plan_store import StoredPlan
from reconciler.records.secret_store import Installation, StoredSecret
from reconciler.records.status import LaneStatusRow
from reconciler.records.web_sessions import WebSession
from reconciler.records.webhook_deliveries import WebhookDelivery
from reconciler.records.work_queue import LaneWork

metadata = SQLModel.metadata

__all__ = [
    "AuditHead",
    "AuditRecord",
    "DesiredObject",
    "FeedbackDelivery",
    "Grant",
    "Installation",
    "KnownGoodState",
    "LaneHealth",
    "LaneLease",
    "LaneStatusRow",
    "LaneWork",
    "Notification",
    "OidcReplay",
    "Operation",
    "OperatorToken",
    "OwnedObject",
    "StoredPlan",
    "StoredSecret",
    "WebSession",
    "WebhookDelivery",
    "metadata",
]
