"""The ownership registry: which provider objects Setpoint created or adopted, for which lane."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reconciler.store.columns import JSONDocument, UTCDateTime, utcnow


class OwnedObject(SQLModel, table=True):
    __tablename__ = "owned_objects"
    __table_args__ = (
        sa.UniqueConstraint("provider", "object_type", "object_id", name="uq_owned_objects_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=32)  # dokploy | github
    object_type: str = Field(max_length=32)  # application | compose | runner ...
    object_id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    lane: str = Field(max_length=200, index=True)
    protected: bool = Field(default=False)
    adopted: bool = Field(default=False)
    # Env keys Setpoint wrote: removing one from desired state removes it here, and keys
    # someone else added by hand are left alone.
    managed_env_keys: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    # The subset Setpoint wrote from plain (non-secret) desired env: the only values read back
    # from Dokploy that a plan may show in clear. Everything else appears as a fingerprint.
    plain_env_keys: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    # Hash of the configuration the last verified deploy ran with: a save without a deploy
    # (a failed apply, say) leaves it behind, so the next plan knows a deploy is owed.
    deployed_config_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
