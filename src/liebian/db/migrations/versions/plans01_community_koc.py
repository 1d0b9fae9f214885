"""community: the KOC programme (nominated KOCs, their tasks)

Revision ID: plans01
Revises: cpeople01
Create Date: 2026-12-07 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "plans01"
down_revision = "cpeople01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "community_kocs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nominated_by", sa.String(length=128), nullable=False),
        sa.Column("nominated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_kocs")),
        sa.UniqueConstraint("person_id", "group_id", name="uq_community_kocs_person_group"),
    )
    with op.batch_alter_table("community_kocs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_community_kocs_person_id"), ["person_id"], unique=False)
    op.create_table(
        "community_koc_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("koc_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("reward_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("reward_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["koc_id"], ["community_kocs.id"], name=op.f("fk_community_koc_tasks_koc_id_community_kocs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_koc_tasks")),
    )
    with op.batch_alter_table("community_koc_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_community_koc_tasks_koc_id"), ["koc_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("community_koc_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_koc_tasks_koc_id"))
    op.drop_table("community_koc_tasks")
    with op.batch_alter_table("community_kocs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_kocs_person_id"))
    op.drop_table("community_kocs")
