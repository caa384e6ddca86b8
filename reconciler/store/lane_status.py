"""Per-lane status with Kubernetes-style conditions, and the lease that serialises lane work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from reconciler.store.columns import JSONDocument, UTCDateTime, utcnow


class LaneStatusRow(SQLModel, table=True):
    __tablename__ = "lane_status"

    lane: str = Field(primary_key=True, max_length=200)
    conditions: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    observed_generation: int | None = None
    last_applied_plan: str | None = Field(default=None, max_length=40)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LaneLease(SQLModel, table=True):
    """At most one holder per lane, across processes and replicas sharing the database."""

    __tablename__ = "lane_leases"

    lane: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class Installation(SQLModel, table=True):
    """Per-installation values; the salt keeps secret hashes in plans incomparable elsewhere."""

    __tablename__ = "installation"

    id: int = Field(default=1, primary_key=True)
    secret_salt: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
