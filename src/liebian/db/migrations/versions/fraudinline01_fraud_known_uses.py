"""fraud: known uses of devices and IP addresses from imported events, and their sync watermark

Revision ID: fraudinline01
Revises: complaints01
Create Date: 2026-12-06 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fraudinline01"
down_revision = "complaints01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fraud_known_uses",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value_hash", "person_id", name=op.f("pk_fraud_known_uses")),
    )
    with op.batch_alter_table("fraud_known_uses", schema=None) as batch_op:
        batch_op.create_index("ix_fraud_known_uses_person", ["person_id"], unique=False)
        batch_op.create_index("ix_fraud_known_uses_value", ["kind", "value_hash", "last_seen"], unique=False)
    op.create_table(
        "fraud_known_sync",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synced_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_known_sync")),
    )


def downgrade() -> None:
    op.drop_table("fraud_known_sync")
    with op.batch_alter_table("fraud_known_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_fraud_known_uses_value")
        batch_op.drop_index("ix_fraud_known_uses_person")
    op.drop_table("fraud_known_uses")
