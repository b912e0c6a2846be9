"""Freeze announcement claims remember whether they were posted, so a failed post is retried.

Revision ID: 0006_freeze_announcement_posted
Revises: 0005_freeze_deploy_key
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_freeze_announcement_posted"
down_revision = "0005_freeze_deploy_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Claims taken before this revision count as posted (notice stays NULL: never retried).
    op.add_column("freeze_announcement", sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("freeze_announcement", sa.Column("notice", sa.Text(), nullable=True))
    op.add_column("freeze_announcement", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("freeze_announcement") as batch:
        batch.drop_column("attempts")
        batch.drop_column("notice")
        batch.drop_column("posted_at")
