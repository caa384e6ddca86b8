"""lease holders: who holds a lane (host, process, plan) and its heartbeat

Revision ID: 7c41d2e9a8b3
Revises: 5b1e7c3a9d20
Create Date: 2026-11-25 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c41d2e9a8b3"
down_revision: str | None = "5b1e7c3a9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Leases taken by an older Setpoint have no holder process: they free up when they
    # expire, as they always did.
    with op.batch_alter_table("lane_leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("host", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pid_started", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("lane_leases", schema=None) as batch_op:
        for column in ("heartbeat_at", "pid_started", "pid", "host", "plan_id"):
            batch_op.drop_column(column)
