"""Rollback checks: the last result (shown by /health and /incident playbook) and the daily claim.

Revision ID: 0010_rollback_check
Revises: 0004_incidents
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_rollback_check"
down_revision = "0004_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollback_check",
        sa.Column("key", sa.String(60), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("results", sa.Text(), nullable=True),
    )
    op.create_index("ix_rollback_check_finished_at", "rollback_check", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_rollback_check_finished_at", table_name="rollback_check")
    op.drop_table("rollback_check")
