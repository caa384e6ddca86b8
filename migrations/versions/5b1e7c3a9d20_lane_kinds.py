"""Lane kinds: lane keys carry their kind; ownership per kind and lane, with opaque facts

Every lane so far was a product lane: `shop/testing` becomes `product:shop/testing` in the
ownership registry, lane status and leases. The product-only ownership columns move into
`facts`. Pending plans computed before the upgrade name lanes the new engine does not know,
so they are superseded (plan again). Audit records are never rewritten: the chain holds.

Revision ID: 5b1e7c3a9d20
Revises: ec2c9a0b45b8
Create Date: 2026-11-25 13:40:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5b1e7c3a9d20"
down_revision: str | None = "ec2c9a0b45b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
PRODUCT = "product:"
# The columns this revision moves, as they are on both sides of it.
OWNED = sa.table(
    "owned_objects",
    sa.column("id", sa.Integer),
    sa.column("lane", sa.String),
    sa.column("facts", JSON),
    sa.column("managed_env_keys", JSON),
    sa.column("plain_env_keys", JSON),
    sa.column("deployed_config_hash", sa.String),
)


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("owned_objects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="product")
        )
        batch_op.add_column(
            sa.Column("facts", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.create_index("ix_owned_objects_kind", ["kind"], unique=False)

    rows = bind.execute(
        sa.select(
            OWNED.c.id,
            OWNED.c.lane,
            OWNED.c.managed_env_keys,
            OWNED.c.plain_env_keys,
            OWNED.c.deployed_config_hash,
        )
    ).all()
    for row in rows:
        facts = {
            "managed_env_keys": _loaded(row.managed_env_keys) or [],
            "plain_env_keys": _loaded(row.plain_env_keys) or [],
            "deployed_config_hash": row.deployed_config_hash,
        }
        bind.execute(
            OWNED.update()
            .where(OWNED.c.id == row.id)
            .values(lane=PRODUCT + row.lane, facts=facts)
        )

    with op.batch_alter_table("owned_objects", schema=None) as batch_op:
        batch_op.drop_column("managed_env_keys")
        batch_op.drop_column("plain_env_keys")
        batch_op.drop_column("deployed_config_hash")

    with op.batch_alter_table("lane_status", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        sa.text("UPDATE lane_status SET lane = :prefix || lane").bindparams(prefix=PRODUCT)
    )
    op.execute(
        sa.text("UPDATE lane_leases SET lane = :prefix || lane").bindparams(prefix=PRODUCT)
    )
    op.execute(sa.text("UPDATE plans SET status = 'superseded' WHERE status = 'pending'"))


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("owned_objects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("managed_env_keys", JSON, nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("plain_env_keys", JSON, nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("deployed_config_hash", sa.String(length=64), nullable=True)
        )
    for row in bind.execute(sa.select(OWNED.c.id, OWNED.c.lane, OWNED.c.facts)).all():
        facts = _loaded(row.facts) or {}
        bind.execute(
            OWNED.update()
            .where(OWNED.c.id == row.id)
            .values(
                lane=row.lane.removeprefix(PRODUCT),
                managed_env_keys=facts.get("managed_env_keys", []),
                plain_env_keys=facts.get("plain_env_keys", []),
                deployed_config_hash=facts.get("deployed_config_hash"),
            )
        )
    with op.batch_alter_table("owned_objects", schema=None) as batch_op:
        batch_op.drop_index("ix_owned_objects_kind")
        batch_op.drop_column("facts")
        batch_op.drop_column("kind")
    with op.batch_alter_table("lane_status", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
