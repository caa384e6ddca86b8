"""Audit records: append-only rows, each carrying the hash of the one before it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from reconciler.store.columns import JSONDocument, UTCDateTime, utcnow


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_records"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    event: str = Field(max_length=40, index=True)
    lane: str | None = Field(default=None, max_length=200, index=True)
    plan_id: str | None = Field(default=None, max_length=40, index=True)
    action_id: str | None = Field(default=None, max_length=40)
    data: dict[str, Any] = Field(sa_type=JSONDocument)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})


class AuditHead(SQLModel, table=True):
    """One row: the chain's tip. Appenders lock it, so concurrent writers cannot fork the chain."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0)
    hash: str = Field(default="0" * 64, max_length=64)
