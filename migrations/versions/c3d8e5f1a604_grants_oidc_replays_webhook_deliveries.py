"""grants, OIDC replay store, webhook deliveries: who may ask the API for what, which
token ids were used, which deliveries were handled

Revision ID: c3d8e5f1a604
Revises: 9a4f1c2e7b10
Create Date: 2026-11-25 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c3d8e5f1a604"
down_revision: str | None = "9a4f1c2e7b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("repository", sa.String(length=200), nullable=False),
        sa.Column("workflow_ref", sa.String(length=300), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("environment", sa.String(length=200), nullable=False),
        sa.Column("lanes", sa.String(length=200), nullable=False),
        sa.Column("allow_apply", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_grants_repository_id", "grants", ["repository_id"])
    op.create_table(
        "oidc_replays",
        sa.Column("jti", sa.String(length=200), primary_key=True),
        sa.Column("forget_after", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_oidc_replays_forget_after", "oidc_replays", ["forget_after"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.String(length=100), primary_key=True),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=True),
        sa.Column("lanes", JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_received_at", "webhook_deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("oidc_replays")
    op.drop_table("grants")
