"""Stored plans: the body is the typed plan as JSON; status tracks what became of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from reconciler.store.columns import JSONDocument, UTCDateTime, utcnow


class StoredPlan(SQLModel, table=True):
    __tablename__ = "plans"

    id: str = Field(primary_key=True, max_length=40)
    digest: str = Field(max_length=64)
    desired_revision: str = Field(max_length=64)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # pending -> applying -> applied | failed; or refused (stays pending-able) / superseded
    status: str = Field(default="pending", max_length=20, index=True)
    lanes: list[str] = Field(sa_type=JSONDocument)
    body: dict[str, Any] = Field(sa_type=JSONDocument)
