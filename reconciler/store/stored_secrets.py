"""Encrypted secret values (the `fromStore` source). Only ciphertext is ever stored."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from reconciler.store.columns import UTCDateTime, utcnow


class StoredSecret(SQLModel, table=True):
    __tablename__ = "stored_secrets"

    name: str = Field(primary_key=True, max_length=200)
    ciphertext: str = Field(max_length=20000)  # base64(nonce || AES-256-GCM(value, aad=name))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
