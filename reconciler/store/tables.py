"""Every table, imported in one place so that metadata (and alembic) sees them all."""

from __future__ import annotations

from sqlmodel import SQLModel

from reconciler.store.audit_records import AuditHead, AuditRecord
from reconciler.store.desired_objects import DesiredObject
from reconciler.store.lane_status import Installation, LaneLease, LaneStatusRow
from reconciler.store.ownership import OwnedObject
from reconciler.store.plans import StoredPlan
from reconciler.store.stored_secrets import StoredSecret

metadata = SQLModel.metadata

__all__ = [
    "AuditHead",
    "AuditRecord",
    "DesiredObject",
    "Installation",
    "LaneLease",
    "LaneStatusRow",
    "OwnedObject",
    "StoredPlan",
    "StoredSecret",
    "metadata",
]
