"""person lookups: identifiers by their masked display, invites by inviter

The console's person search matches a masked identifier as shown (138****1234) and its person labels
read each inviter's nickname from their invites: both were scans without these indexes.

Revision ID: cpeople01
Revises: insights01
"""

from __future__ import annotations

from alembic import op

revision = "cpeople01"
down_revision = "insights01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identifiers_display"), ["display"], unique=False)
    with op.batch_alter_table("campaign_invites", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_invites_inviter_person_id"), ["inviter_person_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_invites_inviter_person_id"))
    with op.batch_alter_table("identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identifiers_display"))
