"""Recorded deploys remember CI's `Idempotency-Key`, so a retried POST records nothing twice.

Revision ID: 0005_freeze_deploy_key
Revises: 0002_freeze
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_freeze_deploy_key"
down_revision = "0002_freeze"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("freeze_deploy", sa.Column("idempotency_key", sa.String(200), nullable=True))
    op.add_column("freeze_deploy", sa.Column("request_digest", sa.String(64), nullable=True))
    op.create_index("ux_freeze_deploy_idempotency_key", "freeze_deploy", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_freeze_deploy_idempotency_key", "freeze_deploy")
    with op.batch_alter_table("freeze_deploy") as batch:
        batch.drop_column("request_digest")
        batch.drop_column("idempotency_key")
