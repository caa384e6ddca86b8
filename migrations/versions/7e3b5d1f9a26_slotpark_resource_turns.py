"""resource turns: a durable, ordered line per shared resource (a Dokploy server's build
slot), so a lane waiting for it parks with its place kept instead of holding a worker

Revision ID: 7e3b5d1f9a26
Revises: c5a1e9d3f702
Create Date: 2026-12-07 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e3b5d1f9a26"
down_revision: str | None = "c5a1e9d3f702"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resource_turns",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("lane", sa.String(length=200), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("holding_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("resource", "lane", name="uq_resource_turns_lane"),
    )
    op.create_index("ix_resource_turns_resource", "resource_turns", ["resource"])


def downgrade() -> None:
    op.drop_index("ix_resource_turns_resource", table_name="resource_turns")
    op.drop_table("resource_turns")
