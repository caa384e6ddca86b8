"""Every table, imported in one place so that metadata (and alembic) sees them all."""

from __future__ import annotations

from sqlmodel import SQLModel

from reconciler.store.desired_objects import DesiredObject

metadata = SQLModel.metadata

__all__ = ["DesiredObject", "metadata"]
