"""operations: who asked (actor), why (reason), and the operation a request was merged into

Revision ID: b7d2f0a4c913
Revises: c3d8e5f1a604
Create Date: 2026-12-07 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d2f0a4c913"
down_revision: str | None = "c3d8e5f1a604"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Operations made by an older Setpoint have none of these: their applies were audited
    # under the scheduler, and they were never merged.
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("merged_into", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        for column in ("merged_into", "reason", "actor"):
            batch_op.drop_column(column)
