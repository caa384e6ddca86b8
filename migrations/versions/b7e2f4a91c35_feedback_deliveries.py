"""feedback deliveries: each PR comment and GitHub deployment status an apply caused, what
was sent, when, the answer, and when it is tried again

Revision ID: b7e2f4a91c35
Revises: d4e7a2c9f813
Create Date: 2026-12-07 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b7e2f4a91c35"
down_revision: str | None = "d4e7a2c9f813"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "feedback_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("lane", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", JSON, nullable=True),
    )
    op.create_index("ix_feedback_deliveries_lane", "feedback_deliveries", ["lane"])
    op.create_index("ix_feedback_deliveries_channel", "feedback_deliveries", ["channel"])
    op.create_index("ix_feedback_deliveries_state", "feedback_deliveries", ["state"])


def downgrade() -> None:
    op.drop_table("feedback_deliveries")
