"""work queue, operations, operator tokens: lanes waiting to be reconciled, requested
reconciles, and who may apply through the API

Revision ID: 9a4f1c2e7b10
Revises: 7c41d2e9a8b3
Create Date: 2026-11-25 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9a4f1c2e7b10"
down_revision: str | None = "7c41d2e9a8b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "lane_work",
        sa.Column("lane", sa.String(length=200), primary_key=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_seq", sa.Integer(), nullable=True),
    )
    op.create_index("ix_lane_work_priority", "lane_work", ["priority"])
    op.create_index("ix_lane_work_due_at", "lane_work", ["due_at"])
    op.create_table(
        "operations",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("lane", sa.String(length=200), nullable=False),
        sa.Column("requester", sa.String(length=300), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("body_digest", sa.String(length=64), nullable=False),
        sa.Column("apply_requested", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("requester", "idempotency_key"),
    )
    op.create_index("ix_operations_lane", "operations", ["lane"])
    op.create_index("ix_operations_status", "operations", ["status"])
    op.create_table(
        "operator_tokens",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("operator_tokens")
    op.drop_table("operations")
    op.drop_table("lane_work")
