"""work claim holders: which host and process holds a lane's work claim, so a restarted
loop on the same host takes over its dead predecessor's claims at once

Revision ID: d4e7a2c9f813
Revises: 5b7e2d9c4a18
Create Date: 2026-12-07 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4e7a2c9f813"
down_revision: str | None = "5b7e2d9c4a18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Claims made by an older Setpoint have no holder process: they lapse as they always did.
    with op.batch_alter_table("lane_work", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_host", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("claimed_pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_pid_started", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lane_work", schema=None) as batch_op:
        for column in ("claimed_pid_started", "claimed_pid", "claimed_host"):
            batch_op.drop_column(column)
