"""lane health verdicts (the health watch's latest check of each lane) and notifications
(each message to an operator's sink: what it says, its answer, when it is tried again)

Revision ID: c5a1e9d3f702
Revises: f5a1c7d2e904
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c5a1e9d3f702"
down_revision: str | None = "f5a1c7d2e904"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "lane_health",
        sa.Column("lane", sa.String(length=200), primary_key=True),
        sa.Column("basis", sa.String(length=200), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("check_url", sa.String(length=2000), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("passed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sink", sa.String(length=100), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("lane", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.String(length=4000), nullable=False),
        sa.Column("link", sa.String(length=1000), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("answer", JSON, nullable=True),
        sa.UniqueConstraint("sink", "dedup_key", name="uq_notifications_sink_dedup_key"),
    )
    op.create_index("ix_notifications_state", "notifications", ["state"])
    op.create_index("ix_notifications_lane", "notifications", ["lane"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("lane_health")
