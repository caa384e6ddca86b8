"""known-good states: per lane and desired generation, what ran when the lane was last
converged and healthy (image, health verdict, what to write back), for rollback and promotion

Revision ID: f5a1c7d2e904
Revises: b7e2f4a91c35
Create Date: 2026-12-07 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "f5a1c7d2e904"
down_revision: str | None = "b7e2f4a91c35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "known_good_states",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lane", sa.String(length=200), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("running", sa.String(length=1024), nullable=True),
        sa.Column("verdict", JSON, nullable=False),
        sa.Column("restore", JSON, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("lane", "generation", name="uq_known_good_states_lane_generation"),
    )
    op.create_index("ix_known_good_states_lane", "known_good_states", ["lane"])


def downgrade() -> None:
    op.drop_table("known_good_states")
